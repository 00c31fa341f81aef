use leadflow_core::params::*;

#[test]
fn defaults_are_valid() {
    Params::default().validate().unwrap();
}

#[test]
fn unknown_key_is_named() {
    let err = Params::from_toml("[dataset]\nmin_dat = \"2024-01-01\"\n").unwrap_err();
    let text = leadflow_core::error::chain(&err);
    assert!(text.starts_with("params file") && text.contains("unknown field `min_dat`"), "{text}");
    // toml's own error is kept as the source, not flattened into the message.
    assert!(!err.to_string().contains("min_dat"), "{err}");
    assert!(std::error::Error::source(&err).is_some_and(|s| s.to_string().contains("min_dat")), "{err:?}");
}

#[test]
fn a_preset_with_overrides_and_an_own_table() {
    let p = Params::from_toml("[dataset]\npreset = \"lead\"\nmax_date = \"\"\n[dataset.processing]\nfit_on = \"train\"\n").unwrap();
    let mut want = leadflow_core::dataset::lead();
    want.max_date = String::new();
    want.processing.fit_on = leadflow_core::dataset::FitOn::Train;
    assert_eq!(p.dataset, want);
    assert_eq!(Params::from_toml("").unwrap(), Params::default());
    let own = Params::from_toml("[dataset]\ntarget = \"Churn\"\npositive = \"Yes\"\n").unwrap();
    assert_eq!((own.dataset.negative().as_str(), own.dataset.infer), ("no", true));
    let err = Params::from_toml("[dataset]\npreset = \"wine\"\n").unwrap_err().to_string();
    assert!(err.contains("dataset.preset") && err.contains("lead"), "{err}");
    let err = Params::from_toml("[dataset]\npositive = \"1\"\n").unwrap_err().to_string();
    assert!(err.contains("dataset.target"), "{err}");
}

#[test]
fn bad_value_is_named() {
    let err = Params::from_toml("[train]\ntest_size = 1.5\n").unwrap_err();
    assert!(err.to_string().contains("train.test_size"), "{err}");
    let err = Params::from_toml("[dataset]\npreset = \"lead\"\nmax_date = \"2023-01-01\"\n").unwrap_err();
    assert!(err.to_string().contains("dataset.max_date"), "{err}");
    let err = Params::from_toml("[train.logistic]\ntolerance = -1.0\n").unwrap_err();
    assert!(err.to_string().contains("train.logistic.tolerance"), "{err}");
    let err = Params::from_toml("[train.xgboost]\nn_candidates = 0\n").unwrap_err();
    assert!(err.to_string().contains("n_candidates"), "{err}");
}
