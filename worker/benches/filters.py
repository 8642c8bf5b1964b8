"""Time PyRadiomics' image type filters on brain1 and print the table that
`cargo bench -p radstudy-worker --bench filters` prints, for comparison.

Needs PyRadiomics (`pip install pyradiomics-bhklab`). The image is
`pyradiomics/brain1_image.nrrd` under RADSTUDY_DATA_ROOT (default
../../shared/data next to the repository). SITK_NUM_THREADS sets SimpleITK's
thread count, default 1 to match the one-thread Rust bench.
"""

import os
import pathlib
import statistics
import time

import SimpleITK
from radiomics import imageoperations

RUNS = 5


def main():
    here = pathlib.Path(__file__).resolve().parent
    root = pathlib.Path(os.environ.get("RADSTUDY_DATA_ROOT", here / ".." / ".." / ".." / "shared" / "data"))
    threads = int(os.environ.get("SITK_NUM_THREADS", "1"))
    SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    image = SimpleITK.ReadImage(str(root / "pyradiomics" / "brain1_image.nrrd"))

    filters = [
        ("Square", imageoperations.getSquareImage, {}),
        ("SquareRoot", imageoperations.getSquareRootImage, {}),
        ("Logarithm", imageoperations.getLogarithmImage, {}),
        ("Exponential", imageoperations.getExponentialImage, {}),
        ("Gradient", imageoperations.getGradientImage, {}),
        ("LoG sigma 1 mm", imageoperations.getLoGImage, {"sigma": [1.0]}),
        ("LoG sigma 3 mm", imageoperations.getLoGImage, {"sigma": [3.0]}),
        ("Wavelet (8 bands)", imageoperations.getWaveletImage, {}),
    ]
    print(f"brain1, {list(image.GetSize())} voxels, median of {RUNS} runs, {threads} SimpleITK thread(s)")
    print("| filter | median ms |")
    print("| --- | ---: |")
    for name, function, settings in filters:
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            for output, _, _ in function(image, None, **settings):
                SimpleITK.GetArrayViewFromImage(output)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
