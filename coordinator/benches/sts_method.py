"""Recompute a finished radstudy study's models in Python and compare AUCs.

Usage: python3 sts_method.py STUDY_DIR [--seed 42] [--folds 10]

STUDY_DIR is the output folder of `radstudy run`. The script reads
features.csv, icc.csv, missing_regions.json, selection.json, models.json and
metrics.csv, and prints two Markdown tables.

Table 1 reruns the chain after feature extraction with scipy and
scikit-learn, per model `{sequence}_{region}`:

1. candidates: the columns that icc.csv marks as kept, so both sides start
   from the same features;
2. a patient who has the sequence's "whole" region but lacks this region
   gets each feature's training median over the patients who have the
   region. The indicator column `{sequence}_{region}_missing` is 1 for
   imputed and 0 for observed rows. The model then uses the patients with
   every candidate feature;
3. z-scoring with the training mean and population SD; constant columns go;
4. two-sided Mann-Whitney U (scipy `mannwhitneyu`, method "auto"),
   p < 0.05, or the 10 smallest p-values when none passes;
5. L1 logistic regression with cross-validation, `LogisticRegressionCV`
   with liblinear on a glmnet-style grid C = 1 / (n λ), where n is the
   number of training rows and λ runs over 100 values from λ_max =
   max |Xᵀ(y - ȳ)| / n down to 0.01 λ_max (1e-4 λ_max when rows outnumber
   features), scored by log-loss, with StratifiedKFold(shuffle, seed);
   the folds are min(10, smaller class), at least 2; when the chosen C
   gives no nonzero coefficient, the largest λ with one is used;
6. L2 logistic regression, C = 1 (lbfgs, tol 1e-10);
7. fusion on radstudy's best region (selection.json): the union of the
   Python single models' features on that region, without Mann-Whitney U,
   with one more L1 step.

Table 2 takes radstudy's selected features from models.json and refits only
step 6, on the same patients and standardisation, so its AUCs should agree
with metrics.csv to rounding.

Differences from radstudy that table 1 cannot remove: radstudy's binomial
LASSO is glmnet's (coordinate descent on the penalised mean deviance,
unpenalised intercept, λ_min by mean deviance over folds), while liblinear
penalises the intercept (shrunk by intercept_scaling=10), applies the same C
to folds that have fewer rows than n, and averages the log-loss of the folds
without weights. The folds themselves differ as well, because radstudy
assigns them with its own seeded generator.
"""

import argparse
import json
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

try:
    import numpy as np
    import pandas as pd
    from scipy.stats import mannwhitneyu
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
except ImportError as error:
    print(
        f"a dependency is not importable ({error}); install numpy, pandas, scipy and scikit-learn",
        file=sys.stderr,
    )
    sys.exit(3)

COHORTS = ["training", "internal_validation", "external_validation"]
META_COLUMNS = ["center", "pseudonym", "label", "cohort"]
WHOLE_REGION = "whole"
MWU_ALPHA = 0.05
MWU_FALLBACK_COUNT = 10
N_LAMBDA = 100


class StudyError(Exception):
    """A study folder that lacks a file or column this script reads."""


def read_study(folder):
    """Reads the files of a finished study into a dict of frames and objects."""
    required = [
        "features.csv",
        "icc.csv",
        "missing_regions.json",
        "selection.json",
        "models.json",
        "metrics.csv",
    ]
    for name in required:
        if not (folder / name).is_file():
            raise StudyError(f"{folder / name} is missing; pass the output folder of `radstudy run`")
    features = pd.read_csv(folder / "features.csv")
    missing_columns = [c for c in META_COLUMNS if c not in features.columns]
    if missing_columns:
        raise StudyError(f"features.csv lacks the columns {missing_columns}")
    return {
        "features": features,
        "icc": pd.read_csv(folder / "icc.csv"),
        "missing_regions": json.loads((folder / "missing_regions.json").read_text()),
        "selection": json.loads((folder / "selection.json").read_text()),
        "models": json.loads((folder / "models.json").read_text())["models"],
        "metrics": pd.read_csv(folder / "metrics.csv"),
    }


def region_columns(features, sequence, region):
    prefix = f"{sequence}_{region}_original_"
    return [c for c in features.columns if c.startswith(prefix)]


def impute_missing_regions(study):
    """Returns features.csv with missing regions imputed and indicated.

    Only the regions listed in missing_regions.json are imputed, and the
    medians come from the training patients who have the region.
    """
    table = study["features"].copy()
    training = table["cohort"] == "training"
    for entry in study["missing_regions"]:
        sequence, region = entry["sequence"], entry["region"]
        columns = region_columns(table, sequence, region)
        whole = region_columns(table, sequence, WHOLE_REGION)
        if not columns or not whole:
            continue
        has_sequence = table[whole].notna().any(axis=1)
        has_region = table[columns].notna().any(axis=1)
        imputed = has_sequence & ~has_region
        for column in columns:
            # pandas' median takes the mean of the two middle values.
            median = table.loc[training & has_region, column].median()
            table.loc[imputed, column] = median
        indicator = imputed.astype(float)
        indicator[~has_sequence] = np.nan
        table[entry["indicator"]] = indicator
    return table


def candidate_columns(study, table, sequence, region):
    """Lists the ICC-kept columns of one region, plus its missing indicator."""
    icc = study["icc"]
    kept = icc[(icc["sequence"] == sequence) & (icc["region"] == region) & icc["kept"]]
    columns = [c for c in kept["column"] if c in table.columns]
    indicator = f"{sequence}_{region}_missing"
    if indicator in table.columns:
        columns.append(indicator)
    return columns


def standardise(table, columns):
    """Returns the z-scored design of the patients with every column.

    The mean and population SD come from the training rows. A column whose SD
    is at most 1e-12 times its mean magnitude (or exactly 0) is constant.
    """
    rows = table[columns].notna().all(axis=1)
    patients = table.loc[rows].reset_index(drop=True)
    x = patients[columns].to_numpy(dtype=float)
    training = (patients["cohort"] == "training").to_numpy()
    mean = x[training].mean(axis=0)
    scale = x[training].std(axis=0)
    constant = scale <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    scale[constant] = 1.0
    z = (x - mean) / scale
    return patients, z, training, constant


def lambda_grid(z, y):
    """Returns glmnet's binomial λ grid for standardised z (decreasing)."""
    n, p = z.shape
    lambda_max = np.max(np.abs(z.T @ (y - y.mean()))) / n
    ratio = 0.01 if n < p else 1e-4
    return lambda_max * np.exp(np.linspace(0.0, np.log(ratio), N_LAMBDA))


def lasso_select(z, y, seed, max_folds):
    """Returns the nonzero L1 columns, the λ used and the liblinear warnings.

    When the cross-validated C has no nonzero coefficient, the largest λ of
    the grid with at least one is used, as radstudy does.
    """
    counts = np.bincount(y.astype(int), minlength=2)
    folds = max(2, min(max_folds, int(counts.min())))
    lambdas = lambda_grid(z, y)
    cs = 1.0 / (len(y) * lambdas)
    settings = {"solver": "liblinear", "intercept_scaling": 10.0, "random_state": 0}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegressionCV(
            Cs=cs,
            l1_ratios=[1.0],
            cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
            scoring="neg_log_loss",
            use_legacy_attributes=False,
            **settings,
        ).fit(z, y)
        coefficients = model.coef_.ravel()
        chosen_lambda = 1.0 / (len(y) * float(np.ravel(model.C_)[0]))
        if not np.any(coefficients != 0.0):
            for c, grid_lambda in zip(cs, lambdas):
                fit = LogisticRegression(C=c, l1_ratio=1.0, **settings).fit(z, y)
                if np.any(fit.coef_ != 0.0):
                    coefficients = fit.coef_.ravel()
                    chosen_lambda = grid_lambda
                    break
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return list(np.flatnonzero(coefficients != 0.0)), chosen_lambda, n_warnings


def fit_l2(z, y):
    model = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-10, max_iter=100_000)
    return model.fit(z, y)


def cohort_aucs(patients, probabilities):
    """Returns {cohort: AUC} over the patients of each cohort."""
    aucs = {}
    for cohort in COHORTS:
        rows = (patients["cohort"] == cohort).to_numpy()
        labels = patients.loc[rows, "label"].to_numpy()
        if len(set(labels)) == 2:
            aucs[cohort] = roc_auc_score(labels, probabilities[rows])
    return aucs


def run_chain(name, table, columns, seed, folds, use_mwu):
    """Runs steps 3-6 on `columns`.

    Returns the selected names, the AUCs, the column count after the
    Mann-Whitney step and the chosen λ (None when the L1 step did not run).
    """
    patients, z, training, constant = standardise(table, columns)
    y = patients.loc[training, "label"].to_numpy().astype(int)
    kept = [i for i in range(len(columns)) if not constant[i]]
    if use_mwu:
        train_z = z[training]
        p_values = {
            i: mannwhitneyu(
                train_z[y == 1, i], train_z[y == 0, i], alternative="two-sided", method="auto"
            ).pvalue
            for i in kept
        }
        passing = [i for i in kept if p_values[i] < MWU_ALPHA]
        if not passing:
            passing = sorted(kept, key=lambda i: p_values[i])[:MWU_FALLBACK_COUNT]
        kept = passing
    after_mwu = len(kept)
    chosen_lambda = None
    if len(kept) > 1:
        chosen, chosen_lambda, n_warnings = lasso_select(z[training][:, kept], y, seed, folds)
        if n_warnings:
            print(f"{name}: liblinear did not converge in {n_warnings} fits", file=sys.stderr)
        if chosen:
            kept = [kept[i] for i in chosen]
    model = fit_l2(z[training][:, kept], y)
    probabilities = model.predict_proba(z[:, kept])[:, 1]
    selected = [columns[i] for i in kept]
    return selected, cohort_aucs(patients, probabilities), after_mwu, chosen_lambda


def refit_radstudy_selection(table, candidates, selected):
    """Refits only the L2 logistic regression on radstudy's selection.

    Uses the patients with every candidate feature, as radstudy does, and
    returns the AUCs and the fitted coefficients on the z-scale.
    """
    patients, z, training, _ = standardise(table, candidates)
    index = [candidates.index(name) for name in selected]
    y = patients.loc[training, "label"].to_numpy().astype(int)
    model = fit_l2(z[training][:, index], y)
    probabilities = model.predict_proba(z[:, index])[:, 1]
    return cohort_aucs(patients, probabilities), model


def radstudy_auc(metrics, model, cohort):
    row = metrics[(metrics["model"] == model) & (metrics["cohort"] == cohort)]
    return float(row["auc"].iloc[0]) if len(row) else float("nan")


def format_auc(value):
    return "" if value is None or np.isnan(value) else f"{value:.3f}"


def format_lambda(value):
    return "-" if value is None else f"{value:.3g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path, help="output folder of `radstudy run`")
    parser.add_argument("--seed", type=int, default=42, help="seed of the L1 cross-validation folds")
    parser.add_argument("--folds", type=int, default=10, help="maximum number of L1 CV folds")
    arguments = parser.parse_args()

    try:
        study = read_study(arguments.study_dir)
    except (StudyError, OSError, ValueError) as error:
        print(f"cannot read the study: {error}", file=sys.stderr)
        return 2
    table = impute_missing_regions(study)
    metrics = study["metrics"]
    models = {m["name"]: m for m in study["models"]}

    print(
        f"Python {sys.version.split()[0]}, numpy {version('numpy')}, pandas {version('pandas')}, "
        f"scipy {version('scipy')}, scikit-learn {version('scikit-learn')}\n"
    )

    # Table 1: the whole chain in Python.
    python_selected = {}
    rows = []
    for name, model in models.items():
        build = model["build"]
        if build["kind"] != "single":
            continue
        columns = candidate_columns(study, table, build["sequence"], build["region"])
        selected, aucs, after_mwu, chosen_lambda = run_chain(
            name, table, columns, arguments.seed, arguments.folds, use_mwu=True
        )
        python_selected[name] = (build, selected)
        rows.append((name, len(columns), after_mwu, chosen_lambda, selected, aucs))

    best_region = study["selection"].get("best_region", {}).get("chosen")
    fusion_name = f"fusion_{best_region}"
    if best_region is not None and fusion_name in models:
        union = sorted(
            {
                column
                for build, selected in python_selected.values()
                if build["region"] == best_region
                for column in selected
            }
        )
        selected, aucs, after_mwu, chosen_lambda = run_chain(
            fusion_name, table, union, arguments.seed, arguments.folds, use_mwu=False
        )
        rows.append((fusion_name, len(union), after_mwu, chosen_lambda, selected, aucs))

    print("Table 1: the chain recomputed with scipy and scikit-learn\n")
    print(
        "| model | cohort | AUC radstudy | AUC Python | candidates | after MWU | λ | selected | shared |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for name, n_candidates, after_mwu, chosen_lambda, selected, aucs in rows:
        model = models[name]
        ours = [f["name"] for f in model["features"]]
        shared = len(set(ours) & set(selected))
        funnel = model["funnel"]
        radstudy_lambda = (model.get("lasso") or {}).get("lambda")
        for cohort in COHORTS:
            print(
                f"| {name} | {cohort} | {format_auc(radstudy_auc(metrics, name, cohort))} | "
                f"{format_auc(aucs.get(cohort, float('nan')))} | "
                f"{funnel['candidates']} / {n_candidates} | {funnel['after_mwu']} / {after_mwu} | "
                f"{format_lambda(radstudy_lambda)} / {format_lambda(chosen_lambda)} | "
                f"{len(ours)} / {len(selected)} | {shared} |"
            )
    print("\nPairs are radstudy / Python; λ is the chosen L1 penalty on glmnet's scale.")

    # Table 2: radstudy's selection, only the logistic regression refitted.
    print("\nTable 2: radstudy's selected features, L2 logistic regression refitted in scikit-learn\n")
    print(
        "| model | cohort | AUC radstudy | AUC scikit-learn | difference | max coefficient difference |\n"
        "| --- | --- | ---: | ---: | ---: | ---: |"
    )
    largest_auc_difference = 0.0
    largest_coefficient_difference = 0.0
    for name, model in models.items():
        build = model["build"]
        selected = [f["name"] for f in model["features"]]
        if build["kind"] == "single":
            candidates = candidate_columns(study, table, build["sequence"], build["region"])
        elif build["kind"] == "concat":
            candidates = sorted(
                {f["name"] for single in build["single_models"] for f in models[single]["features"]}
            )
        else:
            continue
        aucs, refit = refit_radstudy_selection(table, candidates, selected)
        coefficients = np.array([f["coefficient"] for f in model["features"]] + [model["intercept"]])
        refitted = np.concatenate([refit.coef_.ravel(), refit.intercept_])
        coefficient_difference = float(np.max(np.abs(coefficients - refitted)))
        largest_coefficient_difference = max(largest_coefficient_difference, coefficient_difference)
        for cohort in COHORTS:
            theirs = radstudy_auc(metrics, name, cohort)
            python = aucs.get(cohort, float("nan"))
            difference = abs(theirs - python)
            largest_auc_difference = max(largest_auc_difference, difference)
            print(
                f"| {name} | {cohort} | {format_auc(theirs)} | {format_auc(python)} | "
                f"{difference:.1e} | {coefficient_difference:.1e} |"
            )
    print(
        f"\nTable 2 agreement: max |AUC difference| {largest_auc_difference:.2e}, "
        f"max |coefficient or intercept difference| {largest_coefficient_difference:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
