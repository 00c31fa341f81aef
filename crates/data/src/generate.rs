//! Synthetic data from the project's own generators. [`generate`]: leads in the raw schema, with the real file's kinds of mess (empty targets, missing
//! customer codes, one-digit days, all four sources) and a learnable signal (mostly `n_visits`,
//! as in the real data). [`churn`]: customers in the churn schema. Deterministic for a given seed.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Columns of the raw leads CSV, in file order.
pub const RAW_COLUMNS: &[&str] = &[
    "lead_id",
    "lead_indicator",
    "date_part",
    "is_active",
    "marketing_consent",
    "first_booking",
    "existing_customer",
    "last_seen",
    "source",
    "domain",
    "country",
    "visited_learn_more_before_booking",
    "visited_faq",
    "purchases",
    "time_spent",
    "customer_group",
    "onboarding",
    "customer_code",
    "n_visits",
];

/// Write a CSV with `header` and the rows `body` writes to a temporary file beside `out`, synced
/// and renamed into place when complete.
fn write_atomically(out: &Path, header: &[&str], body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let werr = |e: std::io::Error| Error::Write { path: out.into(), source: e.into() };
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(werr)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(werr)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    writeln!(w, "{}", header.join(",")).map_err(werr)?;
    body(&mut w).map_err(werr)?;
    w.flush().map_err(werr)?;
    drop(w);
    tmp.as_file().sync_all().map_err(werr)?;
    leadflow_core::artifacts::persist(tmp, out)?;
    Ok(())
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Write `rows` synthetic leads to `out` (CSV, raw schema). The file is written to a temporary
/// name and renamed when complete.
pub fn generate(out: &Path, rows: usize, seed: u64) -> Result<()> {
    write_atomically(out, RAW_COLUMNS, |w| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        const SOURCES: [&str; 4] = ["fb", "organic", "signup", "li"];
        const DOMAINS: [&str; 3] = [".com", ".dk", ".cn"];
        const COUNTRIES: [&str; 3] = ["US", "CN", "DK"];
        let mut line = String::with_capacity(256);
        for id in 0..rows {
            let converted = rng.gen_bool(0.47);
            let day: u32 = rng.gen_range(1..=31);
            let target = if rng.gen_bool(0.048) { String::new() } else { u8::from(converted).to_string() };
            let source = SOURCES[rng.gen_range(0..4)];
            let n_visits = if converted { normal(&mut rng, 13.6, 5.8) } else { normal(&mut rng, 5.0, 4.3) };
            let n_visits = n_visits.round().clamp(1.0, 47.0);
            let purchases = normal(&mut rng, 5.0 + if converted { 0.1 } else { 0.0 }, 2.2).round().clamp(0.0, 17.0);
            let time_spent = normal(&mut rng, 100.0, 10.0);
            let group: u32 = rng.gen_range(1..=9);
            let onboarding = if rng.gen_bool(0.5) { "True" } else { "False" };
            let code: String =
                if rng.gen_bool(0.02) { String::new() } else { (0..10).map(|_| char::from(b'A' + rng.gen_range(0..26u8))).collect() };
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
            line,
            "{id},{target},2024-01-{day},{},{},2024-01-{},{},2024-01-{},{source},{},{},{},{},{purchases},{time_spent},{group},{onboarding},{code},{n_visits}",
            rng.gen_range(0..2),
            if rng.gen_bool(0.7) { "true" } else { "false" },
            rng.gen_range(1..=31),
            if rng.gen_bool(0.5) { "true" } else { "false" },
            rng.gen_range(1..=31),
            DOMAINS[rng.gen_range(0..3)],
            COUNTRIES[rng.gen_range(0..3)],
            rng.gen_range(0..12),
            rng.gen_range(0..12),
        );
            writeln!(w, "{line}")?;
        }
        Ok(())
    })
}

/// Columns of the churn CSV (the churn pipeline's schema), in file order.
pub const CHURN_COLUMNS: &[&str] =
    &["customerID", "Age", "Tenure", "MonthlyCharges", "TotalCharges", "Contract", "PaymentMethod", "PaperlessBilling", "Churn"];

/// Write about `rows` synthetic telecom customers in the churn schema to `out`, with a learnable
/// signal (month-to-month contracts, short tenure, high charges and electronic checks churn more;
/// about a quarter churn) and the faults the churn pipeline cleans: about 2% exact duplicate
/// rows, about 1% impossible ages (outliers), and an empty `TotalCharges` for new customers
/// (tenure 0) as in the public telco file. Written to a temporary name and renamed when complete.
pub fn churn(out: &Path, rows: usize, seed: u64) -> Result<()> {
    write_atomically(out, CHURN_COLUMNS, |w| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        const CONTRACTS: [(&str, f64); 3] = [("Month-to-month", 1.3), ("One year", -0.4), ("Two year", -1.6)];
        const PAYMENTS: [(&str, f64); 4] =
            [("Electronic check", 0.7), ("Mailed check", 0.0), ("Bank transfer (automatic)", -0.3), ("Credit card (automatic)", -0.3)];
        let mut previous: Option<String> = None;
        for id in 0..rows {
            // An exact copy of the previous row now and then (a double export, as in the churn data).
            if let Some(p) = previous.as_ref().filter(|_| rng.gen_bool(0.02)) {
                writeln!(w, "{p}")?;
                continue;
            }
            let (contract, c_eff) = CONTRACTS[[0, 0, 0, 1, 1, 2, 2][rng.gen_range(0..7)]];
            let (payment, p_eff) = PAYMENTS[rng.gen_range(0..4)];
            let tenure: u32 = if rng.gen_bool(0.02) { 0 } else { rng.gen_range(1..=72) };
            let monthly = normal(&mut rng, 65.0, 30.0).clamp(18.0, 120.0);
            let monthly = (monthly * 100.0).round() / 100.0;
            let total = if tenure == 0 { String::new() } else { format!("{:.2}", monthly * f64::from(tenure) * rng.gen_range(0.9..1.1)) };
            let age = if rng.gen_bool(0.01) {
                [150u32, 199, 999, 0][rng.gen_range(0..4)]
            } else {
                normal(&mut rng, 45.0, 15.0).round().clamp(18.0, 90.0) as u32
            };
            let paperless = if rng.gen_bool(0.6) { "Yes" } else { "No" };
            let z = -0.7 + c_eff + p_eff - 0.035 * f64::from(tenure) + 0.018 * (monthly - 65.0) - 0.01 * (f64::from(age.min(90)) - 45.0)
                + if paperless == "Yes" { 0.3 } else { 0.0 };
            let churned = rng.gen_bool(1.0 / (1.0 + (-z).exp()));
            let line = format!(
                "C{id:05},{age},{tenure},{monthly:.2},{total},{contract},{payment},{paperless},{}",
                if churned { "Yes" } else { "No" }
            );
            writeln!(w, "{line}")?;
            previous = Some(line);
        }
        Ok(())
    })
}
