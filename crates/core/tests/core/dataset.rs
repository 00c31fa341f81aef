use leadflow_core::dataset::*;

#[test]
fn lead_preset_is_valid_and_derives_bin_source() {
    let l = lead();
    l.validate().unwrap();
    let d = &l.derive[0];
    assert_eq!(
        [d.apply("li"), d.apply("fb"), d.apply("organic"), d.apply("signup"), d.apply("x")],
        ["socials", "socials", "group1", "group1", "Others"]
    );
}

#[test]
fn target_classes() {
    assert_eq!(class_of("1.0", "1", "0"), Some(Ok(1)));
    assert_eq!(class_of(" 0 ", "1", "0"), Some(Ok(0)));
    assert_eq!(class_of("", "1", "0"), None);
    assert_eq!(class_of("yes", "1", "0"), Some(Err(())));
    assert_eq!(class_of("YES", "Yes", "No"), Some(Ok(1)));
    let d = DatasetParams { target: "Churn".into(), positive: "Yes".into(), ..Default::default() };
    assert_eq!(d.negative(), "no");
    assert_eq!(d.class_labels(), ["Churn = no".to_string(), "Churn = Yes".to_string()]);
}

#[test]
fn classes_are_detected_in_a_stable_order() {
    assert_eq!(detect_classes(["10", "2", "1.0", "1", " ", "2"].into_iter()), ["1.0", "2", "10"]);
    assert_eq!(detect_classes(["b", "a", "c", "a"].into_iter()), ["a", "b", "c"]);
    let d = DatasetParams { target: "y".into(), classes: vec!["a".into()], ..Default::default() };
    assert!(d.validate().unwrap_err().to_string().contains("multiclass = true"));
    let d = DatasetParams { target: "y".into(), multiclass: true, classes: vec!["a".into(), "A".into()], ..Default::default() };
    assert!(d.validate().unwrap_err().to_string().contains("listed twice"));
}

#[test]
fn one_role_per_column() {
    let mut d = lead();
    d.continuous.push("source".into());
    assert!(d.validate().unwrap_err().to_string().contains("`source` is already listed as continuous"));
    let mut d = lead();
    d.drop.push("source".into());
    assert!(d.validate().is_err());
    let d = DatasetParams { target: "y".into(), positive: "maybe".into(), ..Default::default() };
    assert!(d.validate().unwrap_err().to_string().contains("dataset.negative"));
}
