"""Reference side of the lasso_cv benchmark (coordinator/benches/lasso_cv.rs).

Usage: python3 lasso_cv_sklearn.py PROBLEM.json RESULT.json

PROBLEM.json contains the standardised matrix "z" (rows), the labels "y", the
fold id of each row "fold_ids", radstudy's λ grid "lambdas" (decreasing) and
its "lambda_min_ratio". RESULT.json receives, for "gaussian" and "binomial",
the fit time in seconds, the selected feature indices and the chosen λ.

Gaussian: LassoCV(alphas=100, eps=lambda_min_ratio, cv=PredefinedSplit),
which builds the same grid as radstudy from its own alpha_max.

Binomial: LogisticRegressionCV with the L1 penalty and Cs = 1/(n λ) over the
same grid, scoring "neg_log_loss". n is the number of rows of the whole set,
so within a fold fit on n_train rows the penalty is n/n_train (about 1.11)
times radstudy's. The solver is liblinear because saga needs about 90 s for
10 values of C on this problem (so roughly 15 minutes for 100). liblinear
penalises the intercept; intercept_scaling=10 divides that penalty by 10.
liblinear shuffles the coordinates, so random_state=0 fixes its result.

glmnet: if Rscript can load glmnet, cv.glmnet(family="binomial",
lambda=<the same grid>, foldid=<the same folds>, standardize=FALSE) is timed
as well (inside R, so without the time to start R and read the data), under
"glmnet_binomial". It is the reference implementation of radstudy's binomial
LASSO, so its selection should match radstudy's.

Exits with status 3 and a message if scikit-learn cannot be imported.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
import warnings
from importlib.metadata import version

try:
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV, LogisticRegressionCV
    from sklearn.model_selection import PredefinedSplit
except ImportError as error:
    print(f"scikit-learn is not importable ({error}); install scikit-learn==1.9.1", file=sys.stderr)
    sys.exit(3)


GLMNET_SCRIPT = r"""
suppressMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
data <- as.matrix(read.csv(file.path(folder, "problem.csv"), header = FALSE))
y <- data[, 1]
z <- data[, -1, drop = FALSE]
lambdas <- scan(file.path(folder, "lambdas.txt"), quiet = TRUE)
foldid <- scan(file.path(folder, "foldid.txt"), quiet = TRUE)
start <- proc.time()[["elapsed"]]
cv <- cv.glmnet(z, y, family = "binomial", lambda = lambdas, foldid = foldid,
                type.measure = "deviance", standardize = FALSE)
seconds <- proc.time()[["elapsed"]] - start
beta <- as.vector(coef(cv$glmnet.fit, s = cv$lambda.min))[-1]
writeLines(c(sprintf("%.17g", seconds), sprintf("%.17g", cv$lambda.min),
             paste(which(beta != 0) - 1, collapse = " "),
             as.character(packageVersion("glmnet"))),
           file.path(folder, "glmnet.txt"))
"""


def run_glmnet(z, y, fold_ids, lambdas):
    """Times cv.glmnet through Rscript, or returns None if R or glmnet is missing."""
    if shutil.which("Rscript") is None:
        print("glmnet comparison skipped: Rscript not found", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        np.savetxt(folder / "problem.csv", np.column_stack([y, z]), delimiter=",", fmt="%.17g")
        (folder / "lambdas.txt").write_text("\n".join(f"{value:.17g}" for value in lambdas) + "\n")
        # glmnet numbers folds from 1.
        (folder / "foldid.txt").write_text("\n".join(str(i + 1) for i in fold_ids) + "\n")
        (folder / "script.R").write_text(GLMNET_SCRIPT)
        completed = subprocess.run(["Rscript", str(folder / "script.R"), str(folder)])
        if completed.returncode != 0:
            print("glmnet comparison skipped: Rscript failed (is r-cran-glmnet installed?)", file=sys.stderr)
            return None
        seconds, lambda_min, selected, glmnet_version = (folder / "glmnet.txt").read_text().split("\n")[:4]
    return {
        "method": f"glmnet {glmnet_version} cv.glmnet",
        "seconds": float(seconds),
        "selected": [int(value) for value in selected.split()],
        "lambda": float(lambda_min),
    }


def main():
    problem_path, result_path = sys.argv[1], sys.argv[2]
    with open(problem_path) as file:
        problem = json.load(file)
    z = np.asarray(problem["z"], dtype=float)
    y = np.asarray(problem["y"], dtype=float)
    folds = PredefinedSplit(np.asarray(problem["fold_ids"]))
    lambdas = np.asarray(problem["lambdas"], dtype=float)
    rows = len(y)

    start = time.perf_counter()
    gaussian = LassoCV(alphas=len(lambdas), eps=problem["lambda_min_ratio"], cv=folds).fit(z, y)
    gaussian_seconds = time.perf_counter() - start

    cs = list(1.0 / (rows * lambdas))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        binomial = LogisticRegressionCV(
            Cs=cs,
            l1_ratios=[1.0],
            solver="liblinear",
            intercept_scaling=10.0,
            random_state=0,
            cv=folds,
            scoring="neg_log_loss",
            use_legacy_attributes=False,
        ).fit(z, y)
        binomial_seconds = time.perf_counter() - start
    convergence_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)

    glmnet_binomial = run_glmnet(z, y, problem["fold_ids"], lambdas)

    result = {
        "versions": {"numpy": version("numpy"), "scikit-learn": version("scikit-learn")},
        "glmnet_binomial": glmnet_binomial,
        "gaussian": {
            "method": "sklearn LassoCV",
            "seconds": gaussian_seconds,
            "selected": np.flatnonzero(gaussian.coef_).tolist(),
            "lambda": float(gaussian.alpha_),
        },
        "binomial": {
            "method": "sklearn LogisticRegressionCV (L1, liblinear)",
            "seconds": binomial_seconds,
            "selected": np.flatnonzero(binomial.coef_[0]).tolist(),
            "lambda": 1.0 / (rows * float(binomial.C_)),
            "convergence_warnings": convergence_warnings,
        },
    }
    with open(result_path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
