//! PNG copies of the figures, rendered from the SVG by resvg.
//!
//! Text needs a font: the renderer loads the system fonts once through
//! fontdb (`/usr/share/fonts` and the other usual folders on Linux). In a
//! minimal container without fonts, resvg draws the figures without their
//! text; [`PngRenderer::font_faces`] is then 0 and the page states it. The
//! HTML page is unaffected because it inlines the SVG, which the browser
//! draws with its own fonts.

use resvg::{tiny_skia, usvg};

use super::super::ReportError;

/// Pixels per SVG user unit in the PNG, so that a 640 x 480 figure becomes
/// 1280 x 960 pixels, sharp on print and high-density screens.
pub const PNG_SCALE: f32 = 2.0;

/// A resvg renderer with the system fonts loaded.
pub struct PngRenderer {
    options: usvg::Options<'static>,
}

impl Default for PngRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl PngRenderer {
    /// Loads the system fonts.
    pub fn new() -> Self {
        let mut options = usvg::Options::default();
        options.fontdb_mut().load_system_fonts();
        PngRenderer { options }
    }

    /// Returns the number of font faces found.
    pub fn font_faces(&self) -> usize {
        self.options.fontdb.len()
    }

    /// Renders `svg` to PNG bytes at [`PNG_SCALE`].
    pub fn render(&self, figure: &str, svg: &str) -> Result<Vec<u8>, ReportError> {
        let error = |message: String| ReportError::Png {
            figure: figure.to_string(),
            message,
        };
        let tree = usvg::Tree::from_str(svg, &self.options).map_err(|e| error(e.to_string()))?;
        let size = tree
            .size()
            .to_int_size()
            .scale_by(PNG_SCALE)
            .ok_or_else(|| error("the scaled size is zero or too large".into()))?;
        let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
            error(format!(
                "cannot allocate {}x{} pixels",
                size.width(),
                size.height()
            ))
        })?;
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE),
            &mut pixmap.as_mut(),
        );
        pixmap.encode_png().map_err(|e| error(e.to_string()))
    }
}
