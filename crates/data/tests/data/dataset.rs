//! Tables other than the lead preset: every processing option and validation rule, checked
//! against values computed here from the input, and the clear-error cases.

use std::path::{Path, PathBuf};

use leadflow_core::artifacts::{self as art, Layout};
use leadflow_core::Params;
use leadflow_features::{Preprocessing, Scale};
use leadflow_testkit::snapshot;

/// A small table: id, a Yes/No target, two numbers, a category, a yes/no column.
const HEADER: &str = "id,spend,visits,plan,paperless,label";

fn table(dir: &Path, rows: &[String]) -> PathBuf {
    let p = dir.join("table.csv");
    std::fs::write(&p, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    p
}

/// Twenty rows: spend 1..=20 (row 20 an outlier of 1000), visits with gaps, plan a/b/c.
fn rows() -> Vec<String> {
    (1..=20)
        .map(|i| {
            let spend = if i == 20 { 1000 } else { i };
            let visits = if i % 5 == 0 { String::new() } else { (i % 7).to_string() };
            let plan = ["a", "b", "c"][i % 3];
            let paperless = if i % 2 == 0 { "Yes" } else { "no" };
            let label = if i % 2 == 0 || i % 3 == 0 { "Yes" } else { "No" };
            format!("r{i},{spend},{visits},{plan},{paperless},{label}")
        })
        .collect()
}

const BASE: &str = r#"
[dataset]
target = "label"
positive = "Yes"
id = "id"
continuous = ["spend", "visits"]
categorical = ["plan"]
boolean = ["paperless"]
infer = false
"#;

fn params(extra: &str) -> Params {
    Params::from_toml(&format!("{BASE}{extra}")).unwrap()
}

fn run(dir: &Path, raw: &Path, p: &Params) -> (Layout, Preprocessing) {
    let layout = Layout::new(dir.join("artifacts"));
    leadflow_data::run(raw, &layout, p).unwrap();
    let pre = art::read_json(&layout.path(&art::PREPROCESSING), "pre").unwrap();
    (layout, pre)
}

fn gold_column(layout: &Layout, name: &str) -> Vec<String> {
    let t = leadflow_features::table::Table::read(&layout.path(&art::GOLD)).unwrap();
    let j = t.column_index(name).unwrap();
    t.rows.iter().map(|r| r[j].clone()).collect()
}

fn spend_values() -> Vec<f64> {
    (1..=20).map(|i| if i == 20 { 1000.0 } else { i as f64 }).collect()
}

#[test]
fn target_values_map_to_classes_and_the_gold_is_0_1() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let (layout, pre) = run(dir.path(), &raw, &params("[dataset.processing]\nfit_on = \"all\"\n"));
    let want: Vec<String> = (1..=20).map(|i| if i % 2 == 0 || i % 3 == 0 { "1" } else { "0" }.to_string()).collect();
    assert_eq!(gold_column(&layout, "label"), want);
    assert_eq!(pre.target.labels, ["label = no".to_string(), "label = Yes".to_string()]);
    // Booleans are normalised whatever their spelling.
    let want: Vec<&str> = (1..=20).map(|i| if i % 2 == 0 { "true" } else { "false" }).collect();
    assert_eq!(gold_column(&layout, "paperless"), want);
}

#[test]
fn outlier_options_clip_where_computed_here() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let x = spend_values();
    let clip = |opt: &str| {
        let (_, pre) = run(dir.path(), &raw, &params(&format!("[dataset.processing]\nfit_on = \"all\"\noutliers = {opt}\n")));
        let t = pre.continuous.iter().find(|t| t.name == "spend").unwrap().clone();
        (t.clip_lower, t.clip_upper)
    };
    assert_eq!(clip("\"none\""), (f64::NEG_INFINITY, f64::INFINITY));
    let mean = x.iter().sum::<f64>() / 20.0;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 19.0).sqrt();
    let (lo, hi) = clip("{ sigma = 1.5 }");
    assert!((lo - (mean - 1.5 * sd)).abs() < 1e-9 && (hi - (mean + 1.5 * sd)).abs() < 1e-9, "{lo} {hi}");
    // Sorted 1..=19, 1000: Q1 at position 4.75 -> 5.75, Q3 at 14.25 -> 15.25 (numpy's linear).
    let (q1, q3) = (5.75, 15.25);
    let (lo, hi) = clip("{ iqr = 1.5 }");
    assert_eq!((lo, hi), (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)));
}

#[test]
fn imputation_options_fill_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    // visits present: i % 7 for i not a multiple of 5.
    let present: Vec<f64> = (1..=20).filter(|i| i % 5 != 0).map(|i| (i % 7) as f64).collect();
    let fill = |opt: &str| {
        let p = params(&format!("[dataset.processing]\nfit_on = \"all\"\nscaling = \"none\"\nimpute = {opt}\n"));
        let (layout, pre) = run(dir.path(), &raw, &p);
        let t = pre.continuous.iter().find(|t| t.name == "visits").unwrap().clone();
        // Row 5 was empty: its gold value is the fill.
        assert_eq!(gold_column(&layout, "visits")[4].parse::<f64>().unwrap(), t.fill);
        t.fill
    };
    assert!((fill("\"mean\"") - present.iter().sum::<f64>() / present.len() as f64).abs() < 1e-12);
    let mut sorted = present.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(fill("\"median\""), (sorted[7] + sorted[8]) / 2.0);
    let count = |v: f64| present.iter().filter(|&&x| x == v).count();
    let most = (0..7).map(|v| v as f64).max_by(|a, b| count(*a).cmp(&count(*b)).then(b.total_cmp(a))).unwrap();
    assert_eq!(fill("\"mode\""), most);
    assert_eq!(fill("{ constant = -1.0 }"), -1.0);
}

#[test]
fn scaling_options() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let x = spend_values();
    let gold = |opt: &str| {
        let (layout, pre) = run(dir.path(), &raw, &params(&format!("[dataset.processing]\nfit_on = \"all\"\nscaling = \"{opt}\"\n")));
        let v: Vec<f64> = gold_column(&layout, "spend").iter().map(|s| s.parse().unwrap()).collect();
        (v, pre.continuous[0].scale.clone())
    };
    let (v, s) = gold("none");
    assert_eq!((v, s), (x.clone(), Scale::None));
    let (v, _) = gold("min_max");
    assert_eq!(v, x.iter().map(|a| (a - 1.0) / 999.0).collect::<Vec<_>>());
    let (v, _) = gold("standard");
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "standardised: mean {mean}, var {var}");
}

#[test]
fn fitting_on_the_training_split_keeps_test_rows_out() {
    // Standard scaling fitted on the training split (train's split: same labels, test_size and
    // seed): the gold column over the training rows has mean 0 and variance 1 exactly; over all
    // rows it does not. (train's tests check that its X_train is these rows.)
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &many_rows());
    let p = params("[dataset.processing]\nfit_on = \"train\"\nscaling = \"standard\"\n");
    let (layout, pre) = run(dir.path(), &raw, &p);
    let y: Vec<u8> = gold_column(&layout, "label").iter().map(|s| s.parse().unwrap()).collect();
    let (train, test) = leadflow_core::split::train_test_of(&y, p.train.test_size, p.train.seed);
    let v: Vec<f64> = gold_column(&layout, "spend").iter().map(|s| s.parse().unwrap()).collect();
    let moments = |rows: &[usize]| {
        let n = rows.len() as f64;
        let m = rows.iter().map(|&i| v[i]).sum::<f64>() / n;
        (m, rows.iter().map(|&i| (v[i] - m).powi(2)).sum::<f64>() / n)
    };
    let (m, var) = moments(&train);
    assert!(m.abs() < 1e-9 && (var - 1.0).abs() < 1e-9, "train split: mean {m}, var {var}");
    let (m, _) = moments(&test);
    assert!(m.abs() > 1e-3, "the test rows are not part of the fit (mean {m})");
    let meta = leadflow_core::meta::read(&layout.path(&art::DATA_META)).unwrap();
    assert_eq!((meta.rows["gold"], meta.rows["fitted_on"]), (200, train.len()));
    assert!(matches!(pre.continuous[0].scale, Scale::Standard { .. }));
    // With `all`, the same column is standardised over every row instead.
    let (layout, _) = run(dir.path(), &raw, &params("[dataset.processing]\nfit_on = \"all\"\nscaling = \"standard\"\n"));
    let all: Vec<f64> = gold_column(&layout, "spend").iter().map(|s| s.parse().unwrap()).collect();
    assert!((all.iter().sum::<f64>() / 200.0).abs() < 1e-9);
}

/// Two hundred rows with a 40/60 class balance.
pub fn many_rows() -> Vec<String> {
    (0..200)
        .map(|i| {
            let label = if (i * 7) % 10 < 4 { "Yes" } else { "No" };
            format!("r{i},{},{},{},yes,{label}", (i * 37) % 101, i % 9, ["a", "b"][i % 2])
        })
        .collect()
}

#[test]
fn duplicates_dropped_and_categorical_fill_and_derived_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rows();
    r.insert(3, r[2].clone());
    r.push(r[0].clone());
    r[6] = r[6].replace(",a,", ",,");
    let raw = table(dir.path(), &r);
    let extra = "categorical = [\"plan\", \"tier\"]\nfill = { plan = \"unknown\" }\n\
                 derive = [{ name = \"tier\", from = \"plan\", map = { a = \"low\", b = \"high\" }, default = \"other\" }]\n\
                 [dataset.processing]\ndrop_duplicates = true\n";
    let p = Params::from_toml(&format!("{}{extra}", BASE.replace("categorical = [\"plan\"]\n", ""))).unwrap();
    let (layout, _) = run(dir.path(), &raw, &p);
    let meta = leadflow_core::meta::read(&layout.path(&art::DATA_META)).unwrap();
    assert_eq!((meta.rows["raw"], meta.rows["after_drop_duplicates"]), (22, 20));
    let plan = gold_column(&layout, "plan");
    let tier = gold_column(&layout, "tier");
    assert!(plan.contains(&"unknown".to_string()), "the constant fill: {plan:?}");
    for (p, t) in plan.iter().zip(&tier) {
        assert_eq!(
            t,
            match p.as_str() {
                "a" => "low",
                "b" => "high",
                _ => "other",
            }
        );
    }
}

#[test]
fn roles_are_inferred_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let p = Params::from_toml("[dataset]\ntarget = \"label\"\npositive = \"Yes\"\n").unwrap();
    let (layout, pre) = run(dir.path(), &raw, &p);
    let roles: serde_json::Value = art::read_json(&layout.path(&art::ROLES), "roles").unwrap();
    let role = |c: &str| roles.as_array().unwrap().iter().find(|r| r["column"] == c).unwrap().clone();
    assert_eq!(role("spend")["role"], "continuous", "{}", role("spend"));
    assert_eq!(role("visits")["role"], "categorical", "7 distinct numbers: {}", role("visits"));
    assert_eq!(role("plan")["role"], "categorical");
    assert_eq!(role("paperless")["role"], "boolean");
    assert_eq!(role("id")["role"], "ignored", "20 distinct texts in 20 rows: an identifier");
    assert_eq!(role("label")["role"], "target");
    assert!(role("label")["inferred"].is_null() && role("spend")["inferred"].as_str().unwrap().contains("distinct"));
    assert_eq!(pre.encoded, ["paperless", "visits", "plan"]);
}

/// Run with `extra` params on `rows`; expect every needle in the error and nothing written.
fn rejected(rows: &[String], extra: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), rows);
    let layout = Layout::new(dir.path().join("artifacts"));
    let before = snapshot(layout.root());
    let err = leadflow_data::run(&raw, &layout, &params(extra)).unwrap_err().to_string();
    assert!(err.contains("table.csv"), "{err}");
    for n in needles {
        assert!(err.contains(n), "error must mention {n:?}:\n{err}");
    }
    assert_eq!(before, snapshot(layout.root()), "something was written");
}

#[test]
fn every_validation_rule_reports_counts_and_lines() {
    let r = rows();
    // Range: spend 1000 (line 21) and 19 (line 20) outside [0, 18.5].
    rejected(
        &r,
        "[dataset.validation]\nrange = { spend = [0, 18.5] }\n",
        &["line 20, column `spend`: outside the allowed range [0, 18.5], found \"19\"", "2 such values in all; also line 21: \"1000\""],
    );
    // Allowed values.
    rejected(
        &r,
        "[dataset.validation]\nallowed = { plan = [\"a\", \"b\"] }\n",
        &["column `plan`: not one of the allowed values (a, b)", "7 such values"],
    );
    // Missing fraction: visits is empty in 4 of 20 rows.
    rejected(
        &r,
        "[dataset.validation]\nmax_missing = { visits = 0.1 }\n",
        &["column `visits`: 20.0% missing (4 of 20 rows)", "at most 10.0%"],
    );
    rejected(&r, "[dataset.validation]\nmax_missing = { \"*\" = 0.0 }\n", &["column `visits`: 20.0% missing"]);
    // Row counts.
    rejected(&r, "[dataset.validation]\nmin_rows = 21\n", &["20 rows after filtering, validation.min_rows requires at least 21"]);
    rejected(&r, "[dataset.validation]\nmin_rows_per_class = 9\n", &["column `label`: 7 rows of class \"label = no\"", "at least 9"]);
    // A required column that is absent.
    rejected(&r, "[dataset.validation]\nrequired = [\"region\"]\n", &["missing column(s) `region`"]);
}

#[test]
fn all_violations_at_once_types_included() {
    let mut r = rows();
    r[1] = r[1].replace(",b,yes,", ",b,maybe,").replace(",Yes", ",Perhaps");
    r[4] = r[4].replacen(",5,", ",five,", 1);
    rejected(
        &r,
        "[dataset.validation]\nmin_rows = 100\nallowed = { plan = [\"a\", \"b\", \"c\"] }\n",
        &[
            "4 problems, nothing written",
            "line 3, column `label`: expected \"Yes\", \"no\" or empty",
            "found \"Perhaps\"",
            "line 6, column `spend`: expected a number, found \"five\"",
            "line 3, column `paperless`: expected yes/no",
            "validation.min_rows requires at least 100",
        ],
    );
}

#[test]
fn a_table_that_does_not_match_the_params_names_what_is_missing_and_unexpected() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let layout = Layout::new(dir.path().join("artifacts"));
    // The lead preset on this table.
    let err = leadflow_data::run(&raw, &layout, &Params::default()).unwrap_err().to_string();
    for n in ["does not match", "`lead_indicator`", "`n_visits`", "columns not named by params: id, spend, visits, plan, paperless, label"]
    {
        assert!(err.contains(n), "{n:?} in {err}");
    }
    assert!(!layout.root().exists());
}

#[test]
fn the_validate_command_checks_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = table(dir.path(), &rows());
    let params_file = dir.path().join("params.toml");
    std::fs::write(&params_file, BASE).unwrap();
    let cmd = |raw: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_leadflow-data"))
            .current_dir(dir.path())
            .args(["validate", "--raw", raw.to_str().unwrap(), "--params", params_file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = cmd(&raw);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("valid for dataset") && stdout.contains("gold 20") && stdout.contains("paperless"), "{stdout}");
    let mut bad = rows();
    bad[0] = bad[0].replace(",1,", ",one,");
    let bad_raw = dir.path().join("bad.csv");
    std::fs::write(&bad_raw, format!("{HEADER}\n{}\n", bad.join("\n"))).unwrap();
    let out = cmd(&bad_raw);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2, column `spend`: expected a number, found \"one\""));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "only the inputs: nothing written");
}

#[test]
fn multiclass_targets_declared_or_detected() {
    let dir = tempfile::tempdir().unwrap();
    // Integer labels, detected and ordered numerically (10 after 9, `2.0` is class 2).
    let rows: Vec<String> =
        (0..40).map(|i| format!("r{i},{i},{},a,yes,{}", i % 5, if i == 7 { "2.0".to_string() } else { (i % 11).to_string() })).collect();
    let raw = table(dir.path(), &rows);
    let p = Params::from_toml(&format!("{BASE}multiclass = true\n").replace("positive = \"Yes\"\n", "")).unwrap();
    let (layout, pre) = run(dir.path(), &raw, &p);
    assert_eq!(pre.target.classes, (0..11).map(|c| c.to_string()).collect::<Vec<_>>());
    let y = gold_column(&layout, "label");
    assert_eq!((y[7].as_str(), y[10].as_str(), y[39].as_str()), ("2", "10", "6"));
    // Declared string classes: their order is the class order; anything else is refused with
    // its line, and nothing is written.
    let named: Vec<String> = (0..30).map(|i| format!("r{i},{i},1,a,yes,{}", ["low", "mid", "high"][i % 3])).collect();
    let raw = table(dir.path(), &named);
    let declared = format!("{BASE}multiclass = true\nclasses = [\"low\", \"mid\", \"high\"]\n").replace("positive = \"Yes\"\n", "");
    let (layout, pre) = run(dir.path(), &raw, &Params::from_toml(&declared).unwrap());
    assert_eq!(pre.target.labels, ["low", "mid", "high"]);
    assert_eq!(gold_column(&layout, "label")[..3], ["0", "1", "2"]);
    let mut odd = named.clone();
    odd[4] = odd[4].replace(",mid", ",extreme");
    let before = snapshot(&dir.path().join("artifacts"));
    let raw = table(dir.path(), &odd);
    let err = leadflow_data::run(&raw, &Layout::new(dir.path().join("artifacts")), &Params::from_toml(&declared).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 6, column `label`: expected one of low, mid, high or empty (dataset.classes), found \"extreme\""), "{err}");
    assert_eq!(before, snapshot(&dir.path().join("artifacts")));
    // A single value is not a multiclass target.
    let one: Vec<String> = (0..10).map(|i| format!("r{i},{i},1,a,yes,same")).collect();
    let raw = table(dir.path(), &one);
    let p = Params::from_toml(&format!("{BASE}multiclass = true\n").replace("positive = \"Yes\"\n", "")).unwrap();
    let err = leadflow_data::run(&raw, &Layout::new(dir.path().join("other")), &p).unwrap_err().to_string();
    assert!(err.contains("1 distinct values (same); a multiclass target needs 2 to 255"), "{err}");
}
