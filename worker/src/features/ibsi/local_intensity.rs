//! IBSI local intensity features: the mean intensity in a 1 cm³ sphere around ROI voxels.
//!
//! The sphere has radius r = (3 / (4π))^(1/3) cm ≈ 6.2035 mm and is centred on a voxel
//! centre. It contains every image voxel whose centre lies within r, inside the ROI or
//! not, and only voxels of the image: near the image border the mean is over fewer
//! voxels. The image is not interpolated, so the sphere's voxel volume differs from
//! 1 cm³ for coarse grids.
//!
//! - local intensity peak (VJGA): the largest sphere mean over the ROI voxels that have
//!   the ROI's maximum intensity;
//! - global intensity peak (0F91): the largest sphere mean over all ROI voxels.

use super::grey_levels::RoiGrid;
use crate::image::Volume;

/// Tags of [`compute`] without the `loc_` prefix, in output order.
pub(super) const NAMES: [&str; 2] = ["peak_loc", "peak_glob"];

/// Computes the local and global intensity peaks, tagged `loc_peak_loc` and
/// `loc_peak_glob`.
pub(super) fn compute(image: &Volume, grid: &RoiGrid) -> Vec<(String, f64)> {
    let radius = 10.0 * (3.0 / (4.0 * std::f64::consts::PI)).cbrt();
    let spacing = image.geometry.spacing;
    let reach = spacing.map(|step| (radius / step).floor() as isize);
    let mut offsets = Vec::new();
    for dk in -reach[2]..=reach[2] {
        for dj in -reach[1]..=reach[1] {
            for di in -reach[0]..=reach[0] {
                let squared = (di as f64 * spacing[0]).powi(2)
                    + (dj as f64 * spacing[1]).powi(2)
                    + (dk as f64 * spacing[2]).powi(2);
                if squared <= radius * radius {
                    offsets.push([di, dj, dk]);
                }
            }
        }
    }

    let (size_i, size_j, size_k) = image.data.dim();
    let dims = [size_i as isize, size_j as isize, size_k as isize];
    let sphere_mean = |centre: [isize; 3]| {
        let mut sum = 0.0;
        let mut count = 0_usize;
        for offset in &offsets {
            let index = [0, 1, 2].map(|axis| centre[axis] + offset[axis]);
            if (0..3).all(|axis| index[axis] >= 0 && index[axis] < dims[axis]) {
                sum += image.data[[index[0] as usize, index[1] as usize, index[2] as usize]];
                count += 1;
            }
        }
        sum / count as f64
    };

    let maximum_intensity = grid
        .roi_intensities()
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max);
    let mut local_peak = f64::NEG_INFINITY;
    let mut global_peak = f64::NEG_INFINITY;
    for ((i, j, k), &inside) in grid.mask.indexed_iter() {
        if !inside {
            continue;
        }
        let centre = [i, j, k].map(|index| index as isize);
        let centre = [0, 1, 2].map(|axis| centre[axis] + grid.offset[axis] as isize);
        let mean = sphere_mean(centre);
        global_peak = global_peak.max(mean);
        if grid.intensities[[i, j, k]] == maximum_intensity {
            local_peak = local_peak.max(mean);
        }
    }
    super::tagged("loc_", "", NAMES, [local_peak, global_peak])
}
