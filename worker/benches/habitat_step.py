"""Time the habitat step of the worker with scikit-image and scikit-learn.

The reference side of ``benches/habitat_step.rs``: the same MR T1 lesions
of the soft-tissue-sarcoma example cohort, the same settings, one thread,
and the same table. Run from the repository root::

    python worker/benches/habitat_step.py [--per-patient] [--data-root DIR]

Requirements: numpy, nibabel, scikit-image >= 0.19 (``skimage.filters.rank``
filters 3-D images) and scikit-learn, with threadpoolctl.

Steps per lesion, matching radstudy's defaults:

* Padded box P: the ROI bounding box grown by 4 voxels (half of the 9-voxel
  window edge) and clipped to the image. Intensities map to [0, 1] by the
  min and max over P and to 256 levels by round-half-up of x * 255, the
  rounding of radstudy (and MATLAB) for these non-negative values.
* Local entropy: ``skimage.filters.rank.entropy`` on P with a 9 x 9 x 9
  footprint and the ROI as ``mask``. The rank filters count only mask
  pixels inside the image and divide by that count, which is radstudy's
  ``masked`` boundary. The result is in bits. E is then rescaled to [0, 1]
  inside the ROI.
* Supervoxels: ``KMeans(n_clusters=K1_eff, n_init=10, max_iter=300,
  tol=1e-4, algorithm="lloyd")`` on the [I, E] rows, with K1_eff = min(40,
  voxels // 5, distinct rows); a lesion with K1_eff < 2 is one supervoxel.
  The seed differs from radstudy's, so the inertias agree only to the
  quality of the local optimum both runs reach.

The entropy time covers the normalisation, the quantisation and the filter;
the k-means time covers ``fit``. Reading the files is not timed. Each time
is given twice: wall time (``time.perf_counter``) and the thread's CPU time
(``time.thread_time``), which other jobs on a shared machine inflate less.
"""

import argparse
import csv
import os
import pathlib
import sys
import time

# Limit BLAS and OpenMP to one thread before numpy and scikit-learn load.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import nibabel  # noqa: E402
import numpy as np  # noqa: E402
from skimage.filters import rank  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

SEQUENCE = "MR_T1"
LABEL = 1
WINDOW_EDGE = 9
LEVELS = 256
SUPERVOXELS = 40
MIN_VOXELS_PER_SUPERVOXEL = 5
SEED = 42
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ("manifest_a.csv", "manifest_b.csv")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        type=pathlib.Path,
        default=REPOSITORY.parent / "shared" / "data",
        help="folder that contains sts/ (default: ../shared/data next to the repository)",
    )
    parser.add_argument(
        "--per-patient",
        action="store_true",
        help="also print one CSV line per patient: voxels, K1_eff, sum of E in bits, inertia",
    )
    return parser.parse_args()


def local_entropy(image, mask):
    """Return (I, E rescaled, E) per ROI voxel, in C order of the ROI indices."""
    half = WINDOW_EDGE // 2
    indices = np.nonzero(mask)
    low = [max(int(axis.min()) - half, 0) for axis in indices]
    high = [min(int(axis.max()) + half, size - 1) for axis, size in zip(indices, image.shape)]
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(low, high))
    values = image[box]
    roi = mask[box]

    a, b = values.min(), values.max()
    if b > a:
        normalised = np.clip((values - a) / (b - a), 0.0, 1.0)
    else:
        normalised = np.zeros_like(values)
    levels = np.floor(normalised * (LEVELS - 1) + 0.5).astype(np.uint8)
    footprint = np.ones((WINDOW_EDGE,) * 3, dtype=bool)
    entropy_box = rank.entropy(levels, footprint, mask=roi.astype(np.uint8))

    intensity = normalised[roi]
    entropy = entropy_box[roi]
    spread = entropy.max() - entropy.min()
    rescaled = (entropy - entropy.min()) / spread if spread > 0 else np.zeros_like(entropy)
    return intensity, rescaled, entropy


def supervoxels(features):
    """Return (K1_eff, inertia) of the patient-level k-means."""
    voxels = features.shape[0]
    distinct = np.unique(features, axis=0).shape[0]
    k = min(SUPERVOXELS, voxels // MIN_VOXELS_PER_SUPERVOXEL, distinct)
    if k < 2:
        return 1, float(((features - features.mean(axis=0)) ** 2).sum())
    model = KMeans(
        n_clusters=k, n_init=10, max_iter=300, tol=1e-4, algorithm="lloyd", random_state=SEED
    )
    model.fit(features)
    return k, float(model.inertia_)


def main():
    arguments = parse_arguments()
    if not arguments.data_root.is_dir():
        sys.exit(f"data root {arguments.data_root} not found; pass --data-root DIR")

    rows = []
    skipped = []
    for manifest in MANIFESTS:
        with open(REPOSITORY / "examples" / "sts" / manifest, newline="") as handle:
            for entry in csv.DictReader(handle):
                patient = entry["patient_id"]
                image_path = arguments.data_root / entry[f"{SEQUENCE}_image"]
                mask_path = arguments.data_root / entry[f"{SEQUENCE}_mask"]
                if not (image_path.is_file() and mask_path.is_file()):
                    skipped.append(f"{patient}: file not found")
                    continue
                image = np.asarray(nibabel.load(image_path).get_fdata(), dtype=np.float64)
                mask = np.asarray(nibabel.load(mask_path).get_fdata()) == LABEL

                start, start_cpu = time.perf_counter(), time.thread_time()
                intensity, rescaled, entropy = local_entropy(image, mask)
                entropy_time = time.perf_counter() - start
                entropy_cpu = time.thread_time() - start_cpu

                features = np.column_stack([intensity, rescaled])
                start, start_cpu = time.perf_counter(), time.thread_time()
                k, inertia = supervoxels(features)
                kmeans_time = time.perf_counter() - start
                kmeans_cpu = time.thread_time() - start_cpu
                rows.append(
                    (
                        patient,
                        features.shape[0],
                        k,
                        entropy.sum(),
                        inertia,
                        entropy_time,
                        kmeans_time,
                        entropy_cpu,
                        kmeans_cpu,
                    )
                )

    if arguments.per_patient:
        print(
            "patient,voxels,supervoxels,entropy_sum_bits,inertia,"
            "entropy_s,kmeans_s,entropy_cpu_s,kmeans_cpu_s"
        )
        for row in rows:
            patient, voxels, k, entropy_sum, inertia = row[:5]
            entropy_time, kmeans_time, entropy_cpu, kmeans_cpu = row[5:]
            print(
                f"{patient},{voxels},{k},{entropy_sum:.6f},{inertia:.6e},"
                f"{entropy_time:.4f},{kmeans_time:.4f},{entropy_cpu:.4f},{kmeans_cpu:.4f}"
            )
        print()
    for reason in skipped:
        print(f"skipped {reason}")

    voxels = sum(row[1] for row in rows)
    entropy_total, kmeans_total, entropy_cpu, kmeans_cpu = (
        sum(row[column] for row in rows) for column in (5, 6, 7, 8)
    )
    print(
        "| implementation | patients | voxels | entropy (s) | k-means (s) "
        "| entropy CPU (s) | k-means CPU (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| scikit-image + scikit-learn | {len(rows)} | {voxels} | "
        f"{entropy_total:.2f} | {kmeans_total:.2f} | {entropy_cpu:.2f} | {kmeans_cpu:.2f} |"
    )


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
