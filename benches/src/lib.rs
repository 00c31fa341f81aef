//! What the benchmarks share: the Markdown tables they write into the docs, and the block in a
//! doc that holds each (between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`). A bench run
//! with `--docs` saves its figures as JSON in `benches/results/` and writes the table rendered
//! from them; `benches/tests/docs.rs` renders the committed JSON again and fails when a doc's
//! table is not exactly that, so no figure in those tables is typed by hand.

use serde_json::Value;

pub mod options;
pub mod pipeline;
pub mod predict;
pub mod serving;

/// The text between a block's markers, if the doc has the block.
pub fn block<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let (open, close) = markers(name);
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&close)?;
    Some(&doc[start..end])
}

/// `doc` with the block's text replaced by `body`, or `None` without the block.
pub fn replace_block(doc: &str, name: &str, body: &str) -> Option<String> {
    let old = block(doc, name)?;
    let start = old.as_ptr() as usize - doc.as_ptr() as usize;
    Some(format!("{}\n{}{}", &doc[..start], body, &doc[start + old.len()..]))
}

fn markers(name: &str) -> (String, String) {
    (format!("<!-- bench:{name} -->"), format!("<!-- /bench:{name} -->"))
}

/// Write a run's figures to `json`, then its rendered table into the doc's block.
pub fn record(doc: &std::path::Path, name: &str, json: &std::path::Path, run: &Value, table: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let updated = replace_block(&text, name, table)
        .with_context(|| format!("{} has no block <!-- bench:{name} --> ... <!-- /bench:{name} -->", doc.display()))?;
    std::fs::write(json, serde_json::to_string_pretty(run)? + "\n").with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(doc, updated).with_context(|| format!("writing {}", doc.display()))?;
    Ok(())
}

/// `v` with a unit, `-` when absent.
pub fn fmt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map(|v| format!("{v:.digits$}{unit}")).unwrap_or_else(|| "-".into())
}

/// `theirs / ours` as a ratio, `-` when either is absent.
pub fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_block_is_replaced_and_the_rest_kept() {
        let doc = "intro\n<!-- bench:t -->\nold\n<!-- /bench:t -->\nafter\n";
        let new = super::replace_block(doc, "t", "| a |\n").unwrap();
        assert_eq!(new, "intro\n<!-- bench:t -->\n| a |\n<!-- /bench:t -->\nafter\n");
        assert_eq!(super::block(&new, "t"), Some("\n| a |\n"));
        assert!(super::replace_block(doc, "other", "x").is_none());
    }
}
