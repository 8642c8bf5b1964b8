//! Habitat label maps and overlay PNGs that `ApplyHabitatModel` writes for
//! local review when the request sets `write_maps`.

use std::collections::BTreeMap;
use std::path::Path;

use tracing::{info, warn};

use crate::extract::{ExtractContext, load_sequence};
use crate::habitat::maps::write_habitat_map;
use crate::habitat::overlay::write_overlay_png;
use crate::habitat::regions::RegionMasks;
use crate::manifest::SequenceFiles;

/// Output directory of the habitat maps and the images under the overlays.
pub(super) struct MapOutput<'a> {
    pub(super) dir: &'a Path,
    /// The patient's manifest files per sequence, to reload the image
    /// under the overlay.
    pub(super) files: &'a BTreeMap<String, SequenceFiles>,
    pub(super) context: &'a ExtractContext<'a>,
}

/// Returns the overlay's file name, `<pseudonym>_<sequence>_habitats.png`,
/// beside the label map of [`crate::habitat::maps::label_map_file_name`].
fn overlay_file_name(pseudonym: &str, sequence: &str) -> String {
    format!("{pseudonym}_{sequence}_habitats.png")
}

/// Writes one patient's habitat label map and its overlay PNG into the
/// output directory. A failure is logged and does not affect the round,
/// because the maps are for local review only.
pub(super) fn write_maps(
    output: &MapOutput<'_>,
    pseudonym: &str,
    sequence: &str,
    masks: &RegionMasks,
) {
    let dir = output.dir;
    if let Err(error) = std::fs::create_dir_all(dir) {
        warn!(%error, directory = %dir.display(), "cannot create the habitat map directory");
        return;
    }
    let labels = masks.label_map().mapv(|label| label as u8);
    match write_habitat_map(
        dir,
        pseudonym,
        sequence,
        &labels,
        &masks.geometry,
        &masks.names,
    ) {
        Ok(path) => info!(path = %path.display(), "wrote habitat map"),
        Err(error) => warn!(%error, "writing the habitat map failed"),
    }

    // The image is not kept after ComputeSupervoxels, so it is read again.
    let Some(files) = output.files.get(sequence) else {
        warn!(
            sequence,
            "no manifest files for the overlay; overlay not written"
        );
        return;
    };
    let image = match load_sequence(sequence, files, output.context) {
        Ok(loaded) => loaded.image,
        Err(exclusion) => {
            warn!(reason = %exclusion.reason, field = %exclusion.field, "cannot read the image for the overlay");
            return;
        }
    };
    let path = dir.join(overlay_file_name(pseudonym, sequence));
    match write_overlay_png(&path, &image, &labels, &masks.names) {
        Ok(()) => info!(path = %path.display(), "wrote habitat overlay"),
        Err(error) => warn!(%error, "writing the habitat overlay failed"),
    }
}
