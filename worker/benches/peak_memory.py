"""PyRadiomics side of `cargo bench -p radstudy-worker --bench peak_memory`.

Extracts one case with a PyRadiomics parameter file and prints one JSON line. Its
fields are the peak resident set size in KiB (`VmHWM` of /proc/self/status) before
the extraction, with Python, numpy, SimpleITK and PyRadiomics loaded, and after it.
The line also gives the seconds that `RadiomicsFeatureExtractor.execute` took and the
number of feature values, without the `diagnostics_` entries. Linux only.

Usage: python peak_memory.py IMAGE MASK PARAMETER_FILE. Needs `pip install
pyradiomics-bhklab`.
"""

import json
import logging
import sys
import time

import radiomics
from radiomics import featureextractor


def peak_resident_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM line in /proc/self/status")


def main(image, mask, parameter_file):
    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(parameter_file)
    start_kib = peak_resident_kib()
    start = time.perf_counter()
    result = extractor.execute(image, mask)
    seconds = time.perf_counter() - start
    features = sum(1 for name in result if not name.startswith("diagnostics_"))
    print(json.dumps({
        "start_kib": start_kib,
        "peak_kib": peak_resident_kib(),
        "seconds": seconds,
        "features": features,
    }), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python peak_memory.py IMAGE MASK PARAMETER_FILE")
    main(*sys.argv[1:])
