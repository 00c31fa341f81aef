//! The raw lead schema and the columns each stage relies on.

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

/// Categorical columns of the cleaned data, in output order.
pub const CATEGORICAL: &[&str] = &["lead_id", "lead_indicator", "customer_group", "onboarding", "source", "customer_code"];

/// Continuous columns of the cleaned data, in output order.
pub const CONTINUOUS: &[&str] = &["purchases", "time_spent", "n_visits"];

pub const DATE: &str = "date_part";
pub const TARGET: &str = "lead_indicator";
pub const ID: &str = "lead_id";
pub const SOURCE: &str = "source";
pub const CUSTOMER_CODE: &str = "customer_code";
pub const BIN_SOURCE: &str = "bin_source";

/// Columns the data stage needs; they may not appear in `data.drop_columns`.
pub const PROTECTED_COLUMNS: &[&str] = &[
    "lead_id",
    "lead_indicator",
    "date_part",
    "source",
    "purchases",
    "time_spent",
    "customer_group",
    "onboarding",
    "customer_code",
    "n_visits",
];

/// Categorical columns one-hot encoded by the train stage (drop-first), in order.
pub const ENCODED_CATEGORICAL: &[&str] = &["customer_group", "onboarding", "bin_source", "source"];

/// Gold columns that are not features.
pub const NON_FEATURES: &[&str] = &["lead_id", "customer_code", "date_part", "lead_indicator"];

/// `source` -> `bin_source` as in the lead notebook: li, fb -> socials; organic, signup -> group1;
/// anything else -> Others.
pub fn bin_source(source: &str) -> &'static str {
    match source {
        "li" | "fb" => "socials",
        "organic" | "signup" => "group1",
        _ => "Others",
    }
}
