use std::io::BufReader;

use ndarray::Array3;

use super::*;
use crate::image::{Geometry, Volume};

const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Builds the synthetic lesion of the PNG tests, on a 40 × 30 × 5 grid of
/// 0.5 × 1 × 3 mm with identity direction:
///
/// - lesion: i in 10..30, j in 10..20, k in 1..=3, plus the row j = 20 on
///   slice k = 2, which makes k = 2 the largest slice;
/// - habitat 1 for i < 20 with intensity 100, habitat 2 for i ≥ 20 with
///   intensity 0, and 50 outside the lesion.
///
/// The lesion has 310 voxels at 0 and 310 at 100, so its 1st and 99th
/// percentiles (type 7) are 0 and 100: habitat 1 is white (255), habitat 2
/// black (0) and the background 127.5, shown as 128.
fn synthetic_case() -> (Volume, Array3<u8>) {
    let dims = [40, 30, 5];
    let labels = Array3::from_shape_fn((40, 30, 5), |(i, j, k)| {
        let in_box = (10..30).contains(&i) && (10..20).contains(&j) && (1..=3).contains(&k);
        let extra_row = (10..30).contains(&i) && j == 20 && k == 2;
        match (in_box || extra_row, i < 20) {
            (false, _) => 0u8,
            (true, true) => 1,
            (true, false) => 2,
        }
    });
    let data = labels.mapv(|label| match label {
        0 => 50.0,
        1 => 100.0,
        _ => 0.0,
    });
    let volume = Volume {
        data,
        geometry: Geometry {
            dims,
            spacing: [0.5, 1.0, 3.0],
            origin: [0.0; 3],
            direction: IDENTITY,
        },
        stored_as_integer: true,
    };
    (volume, labels)
}

fn names() -> Vec<String> {
    vec!["inner".to_string(), "marginal".to_string()]
}

struct Decoded {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Decoded {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let start = 3 * (y * self.width + x);
        [
            self.pixels[start],
            self.pixels[start + 1],
            self.pixels[start + 2],
        ]
    }
}

fn decode(path: &Path) -> Decoded {
    let file = File::open(path).expect("PNG opens");
    let mut reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .expect("PNG header decodes");
    let mut buffer = vec![0; reader.output_buffer_size().expect("buffer size fits")];
    let info = reader.next_frame(&mut buffer).expect("PNG frame decodes");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buffer.truncate(info.buffer_size());
    Decoded {
        width: info.width as usize,
        height: info.height as usize,
        pixels: buffer,
    }
}

// Layout of the synthetic case, derived by hand from the module's rules:
// the field of view is i 0..=39 (lesion 10..=29 widened by 15 mm = 30
// voxels, clipped) and j 0..=29 (10..=20 widened by 15 voxels, clipped), so
// 20 mm × 30 mm. The longer side gets 256 pixels of 30/256 mm, the shorter
// round(20 / (30/256)) = round(170.7) = 171. The slices are 1, 2 and 3.
const PANEL_WIDTH: usize = 171;
const PANEL_HEIGHT: usize = 256;
const PIXEL_MM: f64 = 30.0 / 256.0;

fn panel_left(position: usize) -> usize {
    BORDER_PX + position * (PANEL_WIDTH + GAP_PX)
}

const PANEL_TOP: usize = BORDER_PX + TEXT_ROW_PX;

#[test]
fn overlay_png_has_expected_size() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("overlay.png");

    write_overlay_png(&path, &volume, &labels, &names()).expect("overlay writes");

    let decoded = decode(&path);
    // Three panels and two gaps are wider than the legend's longest line,
    // "lesion contour" (14 characters).
    assert_eq!(decoded.width, 2 * BORDER_PX + 3 * PANEL_WIDTH + 2 * GAP_PX);
    // Title row, panel, gap, and three legend lines (two habitats and the
    // contour).
    assert_eq!(
        decoded.height,
        2 * BORDER_PX + TEXT_ROW_PX + PANEL_HEIGHT + GAP_PX + 3 * TEXT_ROW_PX
    );
}

/// Pixels of the middle panel (slice 2) with a given colour.
fn middle_panel_pixels(decoded: &Decoded, colour: [u8; 3]) -> Vec<(usize, usize)> {
    let left = panel_left(1);
    let mut found = Vec::new();
    for y in PANEL_TOP..PANEL_TOP + PANEL_HEIGHT {
        for x in left..left + PANEL_WIDTH {
            if decoded.at(x, y) == colour {
                found.push((x - left, y - PANEL_TOP));
            }
        }
    }
    found
}

#[test]
fn overlay_habitat_pixels_have_blended_colour() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("overlay.png");
    write_overlay_png(&path, &volume, &labels, &names()).expect("overlay writes");
    let decoded = decode(&path);

    // round(0.6 · 255 + 0.4 · (230, 159, 0)) for habitat 1 (orange over
    // white) and round(0.6 · 0 + 0.4 · (86, 180, 233)) for habitat 2 (sky
    // blue over black). No channel lands on a half, so rounding is exact.
    let inner = middle_panel_pixels(&decoded, [245, 217, 153]);
    let marginal = middle_panel_pixels(&decoded, [34, 72, 93]);
    assert!(!inner.is_empty(), "no habitat 1 pixel in the middle panel");
    assert!(
        !marginal.is_empty(),
        "no habitat 2 pixel in the middle panel"
    );

    // Both habitats are 10 mm wide along i, so their interiors are close in
    // pixel count; 10 % allows for the contour and the sampling boundary.
    let ratio = inner.len() as f64 / marginal.len() as f64;
    assert!((ratio - 1.0).abs() < 0.1, "area ratio {ratio}");

    // Background: 50 in the window (0, 100) is 127.5, rounded to 128.
    assert_eq!(decoded.at(panel_left(1), PANEL_TOP), [128, 128, 128]);
}

#[test]
fn overlay_shows_patient_right_on_left() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("overlay.png");
    write_overlay_png(&path, &volume, &labels, &names()).expect("overlay writes");
    let decoded = decode(&path);

    // +i is world +x, towards the patient's right, which the radiological
    // convention shows on the left. Habitat 1 (small i, the side towards
    // the patient's left) must therefore lie right of habitat 2.
    let mean_column = |pixels: &[(usize, usize)]| {
        pixels.iter().map(|&(x, _)| x as f64).sum::<f64>() / pixels.len() as f64
    };
    let inner = middle_panel_pixels(&decoded, [245, 217, 153]);
    let marginal = middle_panel_pixels(&decoded, [34, 72, 93]);
    assert!(mean_column(&inner) > mean_column(&marginal));
}

#[test]
fn overlay_respects_pixel_aspect() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("overlay.png");
    write_overlay_png(&path, &volume, &labels, &names()).expect("overlay writes");
    let decoded = decode(&path);

    // On slice 2 the lesion spans 20 voxels of 0.5 mm along i (10 mm) and
    // 11 voxels of 1 mm along j (11 mm): 85.3 × 93.9 pixels. The contour is
    // part of the lesion, so its bounding box is the lesion's; nearest-
    // neighbour sampling moves each edge by up to one pixel.
    let contour = middle_panel_pixels(&decoded, CONTOUR_COLOUR);
    let width = contour.iter().map(|p| p.0).max().expect("contour") + 1
        - contour.iter().map(|p| p.0).min().expect("contour");
    let height = contour.iter().map(|p| p.1).max().expect("contour") + 1
        - contour.iter().map(|p| p.1).min().expect("contour");
    assert!(
        (width as f64 - 10.0 / PIXEL_MM).abs() <= 1.0,
        "width {width}"
    );
    assert!(
        (height as f64 - 11.0 / PIXEL_MM).abs() <= 1.0,
        "height {height}"
    );
}

#[test]
fn overlay_slices_surround_largest_area() {
    let (_, labels) = synthetic_case();
    assert_eq!(choose_slices(&labels, 2), vec![1, 2, 3]);
}

#[test]
fn overlay_single_slice_lesion_has_one_panel() {
    let mut labels = Array3::<u8>::zeros((4, 4, 6));
    labels[[1, 1, 4]] = 1;
    assert_eq!(choose_slices(&labels, 2), vec![4]);
}

#[test]
fn overlay_view_of_coronal_grid_slices_along_j() {
    // i along world x, j along world −z (superior to inferior), k along
    // world +y: slices are planes of constant j.
    let direction = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]];
    let view = choose_view(&direction);
    assert_eq!(view.slice_axis, 1);
    assert_eq!(view.column_axis, 0);
    assert_eq!(view.row_axis, 2);
    assert!(view.flip_columns, "+x (patient right) must go to the left");
    assert!(view.flip_rows, "+y (anterior) must go to the top");
}

#[test]
fn overlay_view_of_lps_grid_keeps_order() {
    // i along −x, j along −y (DICOM LPS stored as RAS): index order already
    // puts the patient's right on the left and anterior on top.
    let direction = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
    let view = choose_view(&direction);
    assert_eq!(view.slice_axis, 2);
    assert!(!view.flip_columns);
    assert!(!view.flip_rows);
}

#[test]
fn overlay_percentile_matches_type_7() {
    // For 0, 1, …, 100 the type-7 p-quantile is 100 p; numpy.percentile
    // gives the same with its default method="linear".
    let values: Vec<f64> = (0..=100).map(f64::from).collect();
    assert!((percentile(&values, 0.01) - 1.0).abs() < 1e-12);
    assert!((percentile(&values, 0.99) - 99.0).abs() < 1e-12);
    assert!((percentile(&[1.0, 2.0], 0.5) - 1.5).abs() < 1e-12);
}

#[test]
fn overlay_flat_lesion_is_mid_grey() {
    let labels = Array3::from_elem((2, 2, 2), 1u8);
    let image = Array3::from_elem((2, 2, 2), 7.0);
    let window = grey_window(&image, &labels).expect("finite values");
    assert_eq!(window, (6.5, 7.5));
    assert_eq!(grey_level(7.0, window), 127.5);
}

#[test]
fn overlay_rejects_empty_lesion() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_overlay_png(
        &dir.path().join("overlay.png"),
        &volume,
        &labels.mapv(|_| 0),
        &names(),
    )
    .unwrap_err();
    assert!(matches!(error, MapError::EmptyLesion { .. }), "{error}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("list dir").count(), 0);
}

#[test]
fn overlay_rejects_label_without_name() {
    let (volume, labels) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_overlay_png(
        &dir.path().join("overlay.png"),
        &volume,
        &labels,
        &names()[..1],
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            MapError::UnnamedLabel {
                label: 2,
                names: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn overlay_rejects_labels_of_other_shape() {
    let (volume, _) = synthetic_case();
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_overlay_png(
        &dir.path().join("overlay.png"),
        &volume,
        &Array3::from_elem((40, 30, 4), 1u8),
        &names(),
    )
    .unwrap_err();
    assert!(matches!(error, MapError::ShapeMismatch { .. }), "{error}");
}

#[test]
fn overlay_rejects_lesion_without_finite_intensity() {
    let (mut volume, labels) = synthetic_case();
    for (index, &label) in labels.indexed_iter() {
        if label > 0 {
            volume.data[index] = f64::NAN;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let error =
        write_overlay_png(&dir.path().join("overlay.png"), &volume, &labels, &names()).unwrap_err();
    assert!(
        matches!(error, MapError::NoFiniteIntensity { .. }),
        "{error}"
    );
}

#[test]
fn overlay_glyphs_fit_five_columns() {
    for character in ('0'..='9').chain('A'..='Z').chain(" -_.,:=+()/%?".chars()) {
        let rows = glyphs::glyph(character);
        assert!(
            rows.iter().all(|&row| row < 1 << glyphs::GLYPH_WIDTH),
            "{character:?}"
        );
    }
    assert_eq!(glyphs::glyph('m'), glyphs::glyph('M'));
    assert_eq!(glyphs::glyph('é'), glyphs::glyph('?'));
}
