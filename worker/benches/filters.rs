//! Times each image type filter on PyRadiomics' brain1 image (256 × 256 × 25 voxels),
//! on one thread, and prints a table of the median of 5 runs per filter.
//!
//! Run with `cargo bench -p radstudy-worker --bench filters`. `benches/filters.py` times
//! PyRadiomics' own filter functions (SimpleITK, PyWavelets, numpy) on the same image and
//! prints the same table. The image is read from `pyradiomics/brain1_image.nrrd` under
//! `RADSTUDY_DATA_ROOT`, or under `../shared/data` next to the repository. Times leave out
//! reading the file and count only the filter.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use radstudy_worker::filters::{ImageType, Sigma, VoxelBox, derive_images};
use radstudy_worker::image::read_image_file;

const RUNS: usize = 5;

fn main() {
    let data_root = std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let path = data_root.join("pyradiomics/brain1_image.nrrd");
    let (image, pixel_type) = match read_image_file(&path) {
        Ok(file) => (file.volume, file.pixel_type),
        Err(error) => {
            eprintln!("cannot read {}: {error}", path.display());
            std::process::exit(1);
        }
    };

    let sigma = |mm: f64| ImageType::LoG {
        sigmas: vec![Sigma {
            mm,
            text: format!("{mm:?}"),
        }],
    };
    let filters = [
        ("Square", ImageType::Square),
        ("SquareRoot", ImageType::SquareRoot),
        ("Logarithm", ImageType::Logarithm),
        ("Exponential", ImageType::Exponential),
        ("Gradient", ImageType::Gradient { use_spacing: true }),
        ("LoG sigma 1 mm", sigma(1.0)),
        ("LoG sigma 3 mm", sigma(3.0)),
        (
            "Wavelet (8 bands)",
            ImageType::Wavelet {
                start_level: 0,
                level: 1,
            },
        ),
    ];

    println!(
        "brain1, {:?} voxels, median of {RUNS} runs",
        image.geometry.dims
    );
    println!("| filter | median ms |");
    println!("| --- | ---: |");
    for (name, image_type) in filters {
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            let images = derive_images(
                &image,
                pixel_type,
                &image_type,
                &VoxelBox::whole(image.geometry.dims),
            );
            times.push(start.elapsed());
            if let Err(error) = images {
                eprintln!("{name} failed: {error}");
                std::process::exit(1);
            }
        }
        times.sort();
        println!("| {name} | {:.1} |", times[RUNS / 2].as_secs_f64() * 1e3);
    }
}
