//! Region masks of one patient and sequence after habitat assignment:
//! one region per habitat name, `whole` (the lesion) and, when the
//! geometric split is requested, `core` and `rim`.
//!
//! The masks are stored compactly, as the lesion's voxel list with one
//! habitat index and one core flag per voxel, because full-grid masks of
//! every region, sequence and patient would not fit in memory for large MR
//! grids. [`RegionMasks::roi`] rebuilds one region's mask on demand.

use ndarray::Array3;

use super::geometric::{GeometricError, ValidGeometricSettings, geometric_split};
use super::pipeline::{LesionMaps, SpaceSequence, SpaceSupervoxels};
use super::transfer::{DEFAULT_SUBSAMPLES_PER_AXIS, carry_labels};
use crate::image::Geometry;
use crate::mask::Roi;

/// Region name of the whole lesion.
pub const WHOLE: &str = "whole";
/// Region name of the geometric core.
pub const CORE: &str = "core";
/// Region name of the geometric rim.
pub const RIM: &str = "rim";

/// The regions of one patient and sequence on the sequence's grid.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionMasks {
    /// The grid.
    pub geometry: Geometry,
    /// Lesion voxels, in ROI voxel order.
    pub voxels: Vec<[usize; 3]>,
    /// Habitat index of each lesion voxel, into `names`.
    pub habitat: Vec<u16>,
    /// Habitat names of the model.
    pub names: Vec<String>,
    /// Core membership of each lesion voxel, when the geometric split was
    /// built.
    pub core: Option<Vec<bool>>,
}

impl RegionMasks {
    /// Builds the regions from per-voxel habitat indices, and the core and
    /// rim from the lesion's depth when `geometric` is given.
    pub fn new(
        maps: &LesionMaps,
        habitat: Vec<u16>,
        names: Vec<String>,
        geometric: Option<&ValidGeometricSettings>,
    ) -> Result<Self, GeometricError> {
        let core = match geometric {
            None => None,
            Some(settings) => {
                let split = geometric_split(&maps.roi(), &maps.roi_depth(), settings)?;
                Some(maps.voxels.iter().map(|v| split.core[*v]).collect())
            }
        };
        Ok(RegionMasks {
            geometry: maps.geometry.clone(),
            voxels: maps.voxels.clone(),
            habitat,
            names,
            core,
        })
    }

    /// Returns every region name in a fixed order: habitats in model order,
    /// then `whole`, then `core` and `rim` when built.
    pub fn region_names(&self) -> Vec<String> {
        let mut names = self.names.clone();
        names.push(WHOLE.to_string());
        if self.core.is_some() {
            names.push(CORE.to_string());
            names.push(RIM.to_string());
        }
        names
    }

    /// Returns whether lesion voxel `index` is in `region`, or `None` for
    /// an unknown region.
    fn member(&self, region: &str) -> Option<Box<dyn Fn(usize) -> bool + '_>> {
        if region == WHOLE {
            return Some(Box::new(|_| true));
        }
        if let Some(core) = &self.core {
            if region == CORE {
                return Some(Box::new(move |index| core[index]));
            }
            if region == RIM {
                return Some(Box::new(move |index| !core[index]));
            }
        }
        let habitat = self.names.iter().position(|name| name == region)? as u16;
        Some(Box::new(move |index| self.habitat[index] == habitat))
    }

    /// Returns the indices into the lesion voxel list of `region`'s voxels,
    /// or `None` for an unknown region.
    pub fn region_indices(&self, region: &str) -> Option<Vec<usize>> {
        let member = self.member(region)?;
        Some((0..self.voxels.len()).filter(|&i| member(i)).collect())
    }

    /// Returns the voxel count of `region`, or `None` for an unknown
    /// region.
    pub fn count(&self, region: &str) -> Option<usize> {
        let member = self.member(region)?;
        Some((0..self.voxels.len()).filter(|&i| member(i)).count())
    }

    /// Rebuilds `region` as a mask on the grid, or `None` for an unknown
    /// region.
    pub fn roi(&self, region: &str) -> Option<Roi> {
        let member = self.member(region)?;
        let [ni, nj, nk] = self.geometry.dims;
        let mut mask = Array3::from_elem((ni, nj, nk), false);
        let mut voxel_count = 0;
        for (index, voxel) in self.voxels.iter().enumerate() {
            if member(index) {
                mask[*voxel] = true;
                voxel_count += 1;
            }
        }
        Some(Roi { mask, voxel_count })
    }

    /// Returns the full-grid label map: 0 outside the lesion, habitat
    /// index + 1 inside.
    pub fn label_map(&self) -> Array3<u16> {
        let [ni, nj, nk] = self.geometry.dims;
        let mut labels = Array3::zeros((ni, nj, nk));
        for (voxel, &habitat) in self.voxels.iter().zip(&self.habitat) {
            labels[*voxel] = habitat + 1;
        }
        labels
    }
}

/// Builds the regions of one sequence of a space from the habitat index
/// of each reference lesion voxel. A sequence on the space grid takes the
/// indices as they are. Any other sequence takes the reference's label map
/// carried onto its own lesion by physical position ([`carry_labels`],
/// 27 sub-samples per voxel). Returns the masks and, for a carried
/// sequence, whether each of its lesion voxels is mixed (empty otherwise).
pub fn sequence_regions(
    space: &SpaceSupervoxels,
    sequence: &SpaceSequence,
    reference_habitats: &[u16],
    names: &[String],
    geometric: Option<&ValidGeometricSettings>,
) -> Result<(RegionMasks, Vec<bool>), String> {
    if sequence.on_space_grid {
        let masks = RegionMasks::new(
            &sequence.maps,
            reference_habitats.to_vec(),
            names.to_vec(),
            geometric,
        )
        .map_err(|error| error.to_string())?;
        return Ok((masks, Vec::new()));
    }
    let reference = &space.sequences[0].maps;
    let source = RegionMasks::new(reference, reference_habitats.to_vec(), names.to_vec(), None)
        .map_err(|error| error.to_string())?;
    let source_labels = source.label_map().mapv(|label| label as u8);
    let target = sequence.maps.roi();
    let carried = carry_labels(
        &source_labels,
        &reference.geometry,
        &target.mask,
        &sequence.maps.geometry,
        DEFAULT_SUBSAMPLES_PER_AXIS,
    )
    .map_err(|error| format!("carrying the habitat labels failed: {error}"))?;
    let habitats = sequence
        .maps
        .voxels
        .iter()
        .map(|voxel| u16::from(carried.labels[*voxel].saturating_sub(1)))
        .collect();
    let mixed = sequence
        .maps
        .voxels
        .iter()
        .map(|voxel| carried.mixed[*voxel])
        .collect();
    let masks = RegionMasks::new(&sequence.maps, habitats, names.to_vec(), geometric)
        .map_err(|error| error.to_string())?;
    Ok((masks, mixed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::habitat::geometric::GeometricSettings;

    /// A 9 × 9 × 9 cube lesion of 1 mm voxels inside an 11³ grid, with the
    /// voxels of the first two i-planes in habitat 1 and the rest in 0.
    fn cube() -> (LesionMaps, Vec<u16>) {
        let mut voxels = Vec::new();
        for i in 1..10 {
            for j in 1..10 {
                for k in 1..10 {
                    voxels.push([i, j, k]);
                }
            }
        }
        let depth_mm: Vec<f64> = voxels
            .iter()
            .map(|v| {
                v.iter()
                    .map(|&c| (c.min(10 - c)) as f64)
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let max = depth_mm.iter().copied().fold(0.0, f64::max);
        let habitat = voxels.iter().map(|v| u16::from(v[0] <= 2)).collect();
        let maps = LesionMaps {
            geometry: Geometry {
                dims: [11, 11, 11],
                spacing: [1.0; 3],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            intensity: vec![0.0; voxels.len()],
            entropy: vec![0.0; voxels.len()],
            depth: depth_mm.iter().map(|d| d / max).collect(),
            depth_mm,
            voxels,
        };
        (maps, habitat)
    }

    #[test]
    fn regions_partition_lesion() {
        let (maps, habitat) = cube();
        let settings = GeometricSettings {
            min_core_voxels: 1,
            ..GeometricSettings::default()
        }
        .validate()
        .expect("valid");
        let regions = RegionMasks::new(
            &maps,
            habitat,
            vec!["inner".into(), "marginal".into()],
            Some(&settings),
        )
        .expect("split");
        assert_eq!(
            regions.region_names(),
            ["inner", "marginal", "whole", "core", "rim"]
        );
        // 729 lesion voxels; planes i = 1, 2 hold 2 × 81 = 162 of them.
        assert_eq!(regions.count("whole"), Some(729));
        assert_eq!(regions.count("marginal"), Some(162));
        assert_eq!(regions.count("inner"), Some(567));
        // Depth > 3 mm leaves the 3 × 3 × 3 centre (depths 4 and 5 mm).
        assert_eq!(regions.count("core"), Some(27));
        assert_eq!(regions.count("rim"), Some(702));
        assert_eq!(regions.count("mid_2"), None);
        let roi = regions.roi("marginal").expect("known region");
        assert_eq!(roi.voxel_count, 162);
        assert!(roi.mask[[2, 5, 5]]);
        assert!(!roi.mask[[3, 5, 5]]);
        assert_eq!(regions.label_map()[[1, 1, 1]], 2);
        assert_eq!(regions.label_map()[[0, 0, 0]], 0);
    }
}
