//! The voxel grid a header describes: its shape, scalar type and RAS+
//! geometry.

use super::MAX_VOXELS;
use super::decode::ScalarType;
use super::header::{Encoding, Header};
use crate::image::Geometry;

/// The decoded shape, type and geometry of a header.
pub(super) struct Layout {
    pub(super) scalar: ScalarType,
    pub(super) dims: [usize; 3],
    /// Number of voxels, the product of `dims`.
    pub(super) voxels: usize,
    pub(super) geometry: Geometry,
}

impl Layout {
    pub(super) fn from_header(header: &Header) -> Result<Layout, String> {
        let scalar = header
            .scalar
            .ok_or("the required field \"type\" is missing")?;
        let dimension = header
            .dimension
            .ok_or("the required field \"dimension\" is missing")?;
        if header.sizes.len() != dimension {
            return Err(format!(
                "sizes lists {} axes but dimension is {dimension}",
                header.sizes.len()
            ));
        }
        header
            .encoding
            .ok_or("the required field \"encoding\" is missing")?;
        if header.big_endian.is_none()
            && scalar.byte_width() > 1
            && header.encoding != Some(Encoding::Ascii)
        {
            return Err("the field \"endian\" is missing for a multi-byte type".into());
        }

        // A 4-D file counts as 3-D when one axis has size 1 (a single
        // component or time point); that axis is dropped.
        let spatial: Vec<usize> = match dimension {
            3 => vec![0, 1, 2],
            4 => {
                let singleton =
                    header
                        .sizes
                        .iter()
                        .position(|&size| size == 1)
                        .ok_or_else(|| {
                            format!(
                                "expected a 3-D volume, found 4 axes of sizes {:?}",
                                header.sizes
                            )
                        })?;
                (0..4).filter(|&axis| axis != singleton).collect()
            }
            _ => {
                return Err(format!(
                    "expected a 3-D volume, found dimension {dimension}"
                ));
            }
        };
        let dims = [
            header.sizes[spatial[0]],
            header.sizes[spatial[1]],
            header.sizes[spatial[2]],
        ];
        if dims.contains(&0) {
            return Err(format!("sizes {:?} contain a zero", header.sizes));
        }
        let voxels = dims
            .iter()
            .try_fold(1usize, |product, &size| product.checked_mul(size))
            .filter(|&count| count <= MAX_VOXELS)
            .ok_or_else(|| {
                format!(
                    "sizes {:?} exceed the limit of {MAX_VOXELS} voxels",
                    header.sizes
                )
            })?;

        let geometry = geometry(header, &spatial, dims)?;
        Ok(Layout {
            scalar,
            dims,
            voxels,
            geometry,
        })
    }
}

/// Builds the RAS+ geometry from `space directions` and `space origin`, or
/// from `spacings` in a file without a space.
fn geometry(header: &Header, spatial: &[usize], dims: [usize; 3]) -> Result<Geometry, String> {
    let sign = header.frame_sign.unwrap_or([1.0; 3]);
    let mut columns = [[0.0; 3]; 3];
    match (&header.space_directions, &header.spacings) {
        (Some(directions), _) => {
            if directions.len() != header.sizes.len() {
                return Err(format!(
                    "space directions lists {} axes but sizes lists {}",
                    directions.len(),
                    header.sizes.len()
                ));
            }
            for (c, &axis) in spatial.iter().enumerate() {
                let vector = directions[axis].ok_or_else(|| {
                    format!("space directions gives \"none\" for spatial axis {axis}")
                })?;
                columns[c] = std::array::from_fn(|r| vector[r] * sign[r]);
            }
        }
        (None, Some(spacings)) => {
            if spacings.len() != header.sizes.len() {
                return Err(format!(
                    "spacings lists {} axes but sizes lists {}",
                    spacings.len(),
                    header.sizes.len()
                ));
            }
            for (c, &axis) in spatial.iter().enumerate() {
                columns[c][c] = spacings[axis];
            }
        }
        (None, None) => {
            return Err("neither \"space directions\" nor \"spacings\" is given, so the voxel size is unknown".into());
        }
    }
    let origin = header.space_origin.unwrap_or([0.0; 3]);
    let origin: [f64; 3] = std::array::from_fn(|r| origin[r] * sign[r]);

    Geometry::from_axis_columns(dims, origin, columns)
}
