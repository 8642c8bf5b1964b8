//! A PNG of a habitat map over its image, for review by a radiologist.
//!
//! Content:
//!
//! - Slice axis: the voxel axis most aligned with the world z axis
//!   (superior), i.e. the one with the largest |D[2][c]|. For the usual
//!   axial acquisitions that is k, and the panels are axial slices.
//! - Slices: the one with the largest lesion area (label > 0; ties to the
//!   lower index) in the middle, and, when the lesion spans more slices,
//!   the slices halfway to its first and to its last slice on either side,
//!   in increasing slice index. A title above each panel gives the axis and
//!   index, such as `SLICE 23 AXIS K` (voxel index 23 along k).
//! - Orientation: the radiological convention of ITK-SNAP and 3D Slicer's
//!   axial view, the patient's right on the image's left and anterior at
//!   the top. Of the two in-plane axes, the one most aligned with world x
//!   runs along the columns, the other along the rows, and each is flipped
//!   as needed (world frame RAS+).
//! - Field of view: the lesion's in-plane bounding box over all slices,
//!   widened by 15 mm on each side and clipped to the image. The same box
//!   is used on every panel.
//! - Pixels: square, with the longer side of a panel 256 pixels, so the
//!   in-plane spacing (pixel aspect) is respected. Each pixel shows the
//!   voxel that contains its centre (nearest neighbour).
//! - Grey: intensity windowed to the 1st–99th percentiles of the lesion's
//!   finite intensities, over all slices (linear interpolation between
//!   order statistics, the "type 7" default of R and NumPy). A flat lesion
//!   gets a window of ±0.5 around its value, so it shows as mid grey.
//! - Habitats: blended at 40 % opacity, c = round(0.6 · grey + 0.4 · colour),
//!   in Okabe–Ito colours ([`habitat_colour`]). Lesion pixels with a
//!   4-neighbour outside the lesion, or on the panel's edge, are drawn as
//!   the contour in white.
//! - Legend: below the panels, a colour swatch and "label name" for each
//!   habitat, and a white swatch for the contour, in a built-in 5 × 7 font
//!   (capital letters, digits, some punctuation).
//!
//! NOTE: an oblique grid is shown in voxel space, with the axes assigned
//! as above, not resliced into true axial planes.

mod glyphs;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ndarray::Array3;

use super::grid::check_geometry;
use super::maps::{MapError, write_atomically};
use crate::image::Volume;

/// The Okabe–Ito palette without black: orange, sky blue, bluish green,
/// yellow, blue, vermillion and reddish purple, distinguishable under the
/// common forms of colour blindness (Okabe and Ito, "Color Universal Design",
/// 2008).
pub const OKABE_ITO: [[u8; 3]; 7] = [
    [0xE6, 0x9F, 0x00],
    [0x56, 0xB4, 0xE9],
    [0x00, 0x9E, 0x73],
    [0xF0, 0xE4, 0x42],
    [0x00, 0x72, 0xB2],
    [0xD5, 0x5E, 0x00],
    [0xCC, 0x79, 0xA7],
];

/// Opacity of the habitat colours over the grey image.
pub const HABITAT_OPACITY: f64 = 0.4;

/// Colour of the lesion contour.
pub const CONTOUR_COLOUR: [u8; 3] = [0xFF, 0xFF, 0xFF];

/// Returns the overlay colour of habitat `label` (1-based).
///
/// NOTE: the palette has 7 colours, so label 8 repeats label 1's colour.
/// The legend and the sidecar still tell them apart by number.
pub fn habitat_colour(label: u8) -> [u8; 3] {
    OKABE_ITO[(label.max(1) as usize - 1) % OKABE_ITO.len()]
}

/// Longer side of each panel, in pixels.
const PANEL_SIZE_PX: usize = 256;
/// Context around the lesion's bounding box, in mm on each side.
const CONTEXT_MARGIN_MM: f64 = 15.0;
/// Black border around the whole picture, in pixels.
const BORDER_PX: usize = 8;
/// Gap between panels and between the panels and the legend, in pixels.
const GAP_PX: usize = 8;
/// Screen pixels per font pixel.
const FONT_SCALE: usize = 2;
/// Height of a text row (title or legend line), in pixels.
const TEXT_ROW_PX: usize = glyphs::GLYPH_HEIGHT * FONT_SCALE + 6;
/// Horizontal advance per character, in pixels.
const CHARACTER_ADVANCE_PX: usize = (glyphs::GLYPH_WIDTH + 1) * FONT_SCALE;
/// Side of a legend swatch, in pixels.
const SWATCH_PX: usize = glyphs::GLYPH_HEIGHT * FONT_SCALE;
/// Characters of a region name shown in the legend; longer names are cut.
const MAX_LEGEND_NAME_CHARS: usize = 40;
/// Text colour.
const TEXT_COLOUR: [u8; 3] = [0xFF, 0xFF, 0xFF];

/// Writes the overlay PNG of `labels` (0 outside the lesion, 1..=K
/// habitats, on the image grid) over `image` to `path`, atomically.
/// `names[L − 1]` names label L in the legend.
pub fn write_overlay_png(
    path: &Path,
    image: &Volume,
    labels: &Array3<u8>,
    names: &[String],
) -> Result<(), MapError> {
    let what = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let _span = tracing::debug_span!("write_overlay_png", file = %what).entered();

    let picture = render_overlay(image, labels, names, &what)?;
    write_atomically(path, |temporary| {
        let encode_error = |error: png::EncodingError| MapError::Png {
            path: path.to_path_buf(),
            message: error.to_string(),
        };
        let file = File::create(temporary).map_err(|source| MapError::Io {
            path: temporary.to_path_buf(),
            source,
        })?;
        let mut encoder = png::Encoder::new(
            BufWriter::new(file),
            picture.width as u32,
            picture.height as u32,
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode_error)?;
        writer
            .write_image_data(&picture.pixels)
            .map_err(encode_error)?;
        writer.finish().map_err(encode_error)
    })
}

/// An RGB picture, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, PartialEq)]
struct Picture {
    width: usize,
    height: usize,
    /// `3 · width · height` bytes.
    pixels: Vec<u8>,
}

impl Picture {
    fn new(width: usize, height: usize) -> Picture {
        Picture {
            width,
            height,
            pixels: vec![0; 3 * width * height],
        }
    }

    fn set(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        if x < self.width && y < self.height {
            let start = 3 * (y * self.width + x);
            self.pixels[start..start + 3].copy_from_slice(&colour);
        }
    }

    fn fill_rectangle(&mut self, x: usize, y: usize, width: usize, height: usize, colour: [u8; 3]) {
        for row in y..y + height {
            for column in x..x + width {
                self.set(column, row, colour);
            }
        }
    }

    /// Draws text with its top-left corner at (x, y).
    fn draw_text(&mut self, x: usize, y: usize, text: &str, colour: [u8; 3]) {
        for (position, character) in text.chars().enumerate() {
            let rows = glyphs::glyph(character);
            let left = x + position * CHARACTER_ADVANCE_PX;
            for row in 0..glyphs::GLYPH_HEIGHT {
                for column in 0..glyphs::GLYPH_WIDTH {
                    if glyphs::is_set(&rows, column, row) {
                        self.fill_rectangle(
                            left + column * FONT_SCALE,
                            y + row * FONT_SCALE,
                            FONT_SCALE,
                            FONT_SCALE,
                            colour,
                        );
                    }
                }
            }
        }
    }
}

/// Width in pixels of a line of text.
fn text_width(text: &str) -> usize {
    text.chars().count() * CHARACTER_ADVANCE_PX
}

/// Assignment of the voxel axes to a panel's slices, columns and rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct View {
    /// Voxel axis across the slices.
    slice_axis: usize,
    /// Voxel axis along the panel's columns (left to right).
    column_axis: usize,
    /// Voxel axis along the panel's rows (top to bottom).
    row_axis: usize,
    /// Whether the column index decreases from left to right.
    flip_columns: bool,
    /// Whether the row index decreases from top to bottom.
    flip_rows: bool,
}

/// Chooses the slice axis and the in-plane orientation from the direction
/// matrix (columns: voxel axes in RAS+ world components).
fn choose_view(direction: &[[f64; 3]; 3]) -> View {
    let most_aligned = |world: usize, axes: &[usize]| {
        let mut best = axes[0];
        for &axis in &axes[1..] {
            if direction[world][axis].abs() > direction[world][best].abs() {
                best = axis;
            }
        }
        best
    };
    let slice_axis = most_aligned(2, &[0, 1, 2]);
    let in_plane: Vec<usize> = (0..3).filter(|&axis| axis != slice_axis).collect();
    let column_axis = most_aligned(0, &in_plane);
    let row_axis = in_plane[0] + in_plane[1] - column_axis;
    View {
        slice_axis,
        column_axis,
        row_axis,
        // Patient's right (+x) on the left, so columns run towards −x.
        flip_columns: direction[0][column_axis] > 0.0,
        // Anterior (+y) at the top, so rows run towards −y.
        flip_rows: direction[1][row_axis] > 0.0,
    }
}

/// Linear-interpolation percentile (type 7) of sorted values, p in [0, 1].
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    sorted[lower] + fraction * (sorted[upper] - sorted[lower])
}

/// Grey window (low, high) from the lesion's finite intensities.
fn grey_window(image: &Array3<f64>, labels: &Array3<u8>) -> Option<(f64, f64)> {
    let mut values: Vec<f64> = labels
        .indexed_iter()
        .filter(|(_, label)| **label > 0)
        .map(|(index, _)| image[index])
        .filter(|value| value.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let low = percentile(&values, 0.01);
    let high = percentile(&values, 0.99);
    if high > low {
        Some((low, high))
    } else {
        Some((low - 0.5, low + 0.5))
    }
}

fn grey_level(value: f64, (low, high): (f64, f64)) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    ((value - low) / (high - low)).clamp(0.0, 1.0) * 255.0
}

fn blend(grey: f64, colour: [u8; 3]) -> [u8; 3] {
    colour.map(|channel| {
        ((1.0 - HABITAT_OPACITY) * grey + HABITAT_OPACITY * channel as f64).round() as u8
    })
}

/// Slices to show: the largest lesion area in the middle, and the slices
/// halfway to the lesion's first and last slice when they differ from it.
fn choose_slices(labels: &Array3<u8>, slice_axis: usize) -> Vec<usize> {
    let mut areas = vec![0usize; labels.shape()[slice_axis]];
    for ((i, j, k), &label) in labels.indexed_iter() {
        if label > 0 {
            areas[[i, j, k][slice_axis]] += 1;
        }
    }
    let Some(first) = areas.iter().position(|&area| area > 0) else {
        return Vec::new();
    };
    let last = areas.iter().rposition(|&area| area > 0).unwrap_or(first);
    let mut largest = first;
    for (slice, &area) in areas.iter().enumerate() {
        if area > areas[largest] {
            largest = slice;
        }
    }
    let before = first + (largest - first) / 2;
    let after = largest + (last - largest).div_ceil(2);
    let mut slices = vec![before, largest, after];
    slices.dedup();
    slices
}

/// Renders the whole overlay picture.
fn render_overlay(
    image: &Volume,
    labels: &Array3<u8>,
    names: &[String],
    what: &str,
) -> Result<Picture, MapError> {
    let geometry = &image.geometry;
    check_geometry(geometry).map_err(|problem| MapError::InvalidGeometry {
        what: what.to_string(),
        problem,
    })?;
    let shape = {
        let (a, b, c) = labels.dim();
        [a, b, c]
    };
    let image_shape = {
        let (a, b, c) = image.data.dim();
        [a, b, c]
    };
    if shape != geometry.dims || image_shape != geometry.dims {
        return Err(MapError::ShapeMismatch {
            what: what.to_string(),
            expected: geometry.dims,
            found: if shape != geometry.dims {
                shape
            } else {
                image_shape
            },
        });
    }
    if let Some(&label) = labels.iter().find(|&&label| label as usize > names.len()) {
        return Err(MapError::UnnamedLabel {
            what: what.to_string(),
            label,
            names: names.len(),
        });
    }

    let view = choose_view(&geometry.direction);
    let slices = choose_slices(labels, view.slice_axis);
    if slices.is_empty() {
        return Err(MapError::EmptyLesion {
            what: what.to_string(),
        });
    }
    let window = grey_window(&image.data, labels).ok_or_else(|| MapError::NoFiniteIntensity {
        what: what.to_string(),
    })?;
    let frame = Frame::around_lesion(labels, geometry, &view);

    // Legend lines: one per habitat, then the contour.
    let mut legend: Vec<([u8; 3], String)> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let label = (index + 1) as u8;
            let shown: String = name.chars().take(MAX_LEGEND_NAME_CHARS).collect();
            (habitat_colour(label), format!("{label} {shown}"))
        })
        .collect();
    legend.push((CONTOUR_COLOUR, "lesion contour".to_string()));

    let panels_width = slices.len() * frame.width + (slices.len() - 1) * GAP_PX;
    let legend_width = legend
        .iter()
        .map(|(_, text)| SWATCH_PX + GAP_PX + text_width(text))
        .max()
        .unwrap_or(0);
    let width = 2 * BORDER_PX + panels_width.max(legend_width);
    let height = 2 * BORDER_PX + TEXT_ROW_PX + frame.height + GAP_PX + legend.len() * TEXT_ROW_PX;
    let mut picture = Picture::new(width, height);

    let axis_letter = ['I', 'J', 'K'][view.slice_axis];
    for (position, &slice) in slices.iter().enumerate() {
        let left = BORDER_PX + position * (frame.width + GAP_PX);
        picture.draw_text(
            left,
            BORDER_PX,
            &format!("SLICE {slice} AXIS {axis_letter}"),
            TEXT_COLOUR,
        );
        draw_panel(
            &mut picture,
            (left, BORDER_PX + TEXT_ROW_PX),
            &frame,
            &view,
            slice,
            &image.data,
            labels,
            window,
        );
    }

    let legend_top = BORDER_PX + TEXT_ROW_PX + frame.height + GAP_PX;
    for (line, (colour, text)) in legend.iter().enumerate() {
        let top = legend_top + line * TEXT_ROW_PX;
        picture.fill_rectangle(BORDER_PX, top, SWATCH_PX, SWATCH_PX, *colour);
        picture.draw_text(BORDER_PX + SWATCH_PX + GAP_PX, top, text, TEXT_COLOUR);
    }
    Ok(picture)
}

/// The in-plane region shown on every panel and its pixel grid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    /// First and last voxel index shown along the column axis.
    columns: (usize, usize),
    /// First and last voxel index shown along the row axis.
    rows: (usize, usize),
    /// Spacing along the column and row axes, in mm.
    spacing: (f64, f64),
    /// Pixel size, in mm.
    pixel_mm: f64,
    width: usize,
    height: usize,
}

impl Frame {
    /// Builds the frame from the lesion's in-plane bounding box over all
    /// slices, widened by the context margin and clipped to the image.
    /// `labels` must contain a lesion voxel.
    fn around_lesion(labels: &Array3<u8>, geometry: &crate::image::Geometry, view: &View) -> Frame {
        let mut low = [usize::MAX; 3];
        let mut high = [0usize; 3];
        for ((i, j, k), &label) in labels.indexed_iter() {
            if label > 0 {
                for (axis, index) in [i, j, k].into_iter().enumerate() {
                    low[axis] = low[axis].min(index);
                    high[axis] = high[axis].max(index);
                }
            }
        }
        let widen = |axis: usize| {
            let margin = (CONTEXT_MARGIN_MM / geometry.spacing[axis]).ceil() as usize;
            (
                low[axis].saturating_sub(margin),
                (high[axis] + margin).min(geometry.dims[axis] - 1),
            )
        };
        let columns = widen(view.column_axis);
        let rows = widen(view.row_axis);
        let spacing = (
            geometry.spacing[view.column_axis],
            geometry.spacing[view.row_axis],
        );
        let extent_columns_mm = (columns.1 - columns.0 + 1) as f64 * spacing.0;
        let extent_rows_mm = (rows.1 - rows.0 + 1) as f64 * spacing.1;
        let pixel_mm = extent_columns_mm.max(extent_rows_mm) / PANEL_SIZE_PX as f64;
        Frame {
            columns,
            rows,
            spacing,
            pixel_mm,
            width: ((extent_columns_mm / pixel_mm).round() as usize).clamp(1, PANEL_SIZE_PX),
            height: ((extent_rows_mm / pixel_mm).round() as usize).clamp(1, PANEL_SIZE_PX),
        }
    }

    /// Voxel index along an axis for pixel `position`: the voxel that
    /// contains the pixel centre, counted from the range's start, or from
    /// its end when flipped.
    fn voxel_index(
        &self,
        position: usize,
        range: (usize, usize),
        spacing: f64,
        flip: bool,
    ) -> usize {
        let offset = (((position as f64 + 0.5) * self.pixel_mm) / spacing).floor() as usize;
        let offset = offset.min(range.1 - range.0);
        if flip {
            range.1 - offset
        } else {
            range.0 + offset
        }
    }
}

/// Draws one slice at `origin` (left, top) in the picture.
#[allow(clippy::too_many_arguments)]
fn draw_panel(
    picture: &mut Picture,
    (left, top): (usize, usize),
    frame: &Frame,
    view: &View,
    slice: usize,
    image: &Array3<f64>,
    labels: &Array3<u8>,
    window: (f64, f64),
) {
    // Voxel index of each panel pixel, row-major: [rows][columns].
    let column_indices: Vec<usize> = (0..frame.width)
        .map(|x| frame.voxel_index(x, frame.columns, frame.spacing.0, view.flip_columns))
        .collect();
    let row_indices: Vec<usize> = (0..frame.height)
        .map(|y| frame.voxel_index(y, frame.rows, frame.spacing.1, view.flip_rows))
        .collect();
    let voxel = |x: usize, y: usize| {
        let mut index = [0usize; 3];
        index[view.slice_axis] = slice;
        index[view.column_axis] = column_indices[x];
        index[view.row_axis] = row_indices[y];
        index
    };
    let label_at = |x: usize, y: usize| labels[voxel(x, y)];

    for y in 0..frame.height {
        for x in 0..frame.width {
            let index = voxel(x, y);
            let grey = grey_level(image[index], window);
            let label = labels[index];
            let colour = if label == 0 {
                let level = grey.round() as u8;
                [level, level, level]
            } else {
                let on_contour = x == 0
                    || y == 0
                    || x + 1 == frame.width
                    || y + 1 == frame.height
                    || label_at(x - 1, y) == 0
                    || label_at(x + 1, y) == 0
                    || label_at(x, y - 1) == 0
                    || label_at(x, y + 1) == 0;
                if on_contour {
                    CONTOUR_COLOUR
                } else {
                    blend(grey, habitat_colour(label))
                }
            };
            picture.set(left + x, top + y, colour);
        }
    }
}

#[cfg(test)]
mod tests;
