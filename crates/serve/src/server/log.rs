//! The prediction log: scored rows written as CSV — time, model version, the raw input columns
//! (and the columns the dataset's filters read), and what was predicted — so live traffic can be
//! checked with `leadflow model drift --input <log>`. Off by default; a share of rows can be
//! sampled; the file is rotated at a size (`FILE.1` the newest old one, at most `keep` kept). A
//! background thread writes: scoring never waits on the disk, and rows that would make it wait
//! (a full queue) are dropped and counted.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use leadflow_features::table::Table;

use super::Loaded;

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub path: PathBuf,
    /// Share of rows logged, in (0, 1]: every row at 1, exactly every other row at 0.5.
    pub sample: f64,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`FILE.1` .. `FILE.keep`).
    pub keep: usize,
}

/// Counters the server's `/metrics` shows.
#[derive(Debug, Default)]
pub struct LogCounters {
    pub rows: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests whose rows were encoded features, not raw rows: nothing to log.
    pub skipped: AtomicU64,
}

/// One batch of CSV lines for the writer, with the header they belong under.
struct Lines {
    header: String,
    body: String,
}

/// The logging side the server holds.
pub struct PredictionLog {
    sample: f64,
    seen: AtomicU64,
    queue: SyncSender<Lines>,
    pub counters: Arc<LogCounters>,
}

impl PredictionLog {
    /// Start the writer thread (the file is created, or appended to, on the first rows).
    pub fn start(opts: LogOptions) -> std::io::Result<PredictionLog> {
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let (queue, rx) = sync_channel::<Lines>(1024);
        let counters = Arc::new(LogCounters::default());
        let sample = opts.sample;
        std::thread::Builder::new().name("prediction-log".into()).spawn(move || {
            let mut w = Writer { opts, header: None, size: 0 };
            for lines in rx {
                if let Err(e) = w.write(&lines) {
                    tracing::warn!("prediction log {}: {e}", w.opts.path.display());
                }
            }
        })?;
        Ok(PredictionLog { sample, seen: AtomicU64::new(0), queue, counters })
    }

    /// Log the sampled rows of a scored request. `p` holds the model's probabilities (one per row,
    /// or one per class per row).
    pub fn record(&self, loaded: &Loaded, table: &Table, p: &[f64]) {
        let pre = &loaded.model.preprocessing;
        let mut columns: Vec<&str> = pre.raw_inputs();
        for f in &pre.filters {
            if !columns.contains(&f.column.as_str()) {
                columns.push(&f.column);
            }
        }
        let Some(idx) = columns.iter().map(|c| table.column_index(c)).collect::<Option<Vec<usize>>>() else {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let k = pre.target.n_classes();
        let per_row = leadflow_metrics::per_row(k);
        let outputs: Vec<String> = if k == 2 {
            vec!["probability".into(), "label".into()]
        } else {
            std::iter::once("label".to_string()).chain(pre.target.labels.iter().map(|l| format!("p_{l}"))).collect()
        };
        let header = std::iter::once("timestamp")
            .chain(["model_version"])
            .chain(columns.iter().copied())
            .map(field)
            .chain(outputs.iter().map(|o| field(o)))
            .collect::<Vec<_>>()
            .join(",");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let version = loaded.version.map(|v| v.to_string()).unwrap_or_default();
        let classes = leadflow_metrics::predict_classes(p, k, loaded.model.spec.threshold);
        let mut body = String::new();
        let mut logged = 0;
        for (i, row) in table.rows.iter().enumerate() {
            // Row n is logged when floor((n+1)·rate) passes floor(n·rate): exactly `rate` of rows.
            let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
            if ((n + 1.0) * self.sample).floor() <= (n * self.sample).floor() {
                continue;
            }
            body.push_str(&now);
            body.push(',');
            body.push_str(&version);
            for &j in &idx {
                body.push(',');
                body.push_str(&field(&row[j]));
            }
            let scores = &p[i * per_row..(i + 1) * per_row];
            if k == 2 {
                body.push_str(&format!(",{},{}", scores[0], classes[i]));
            } else {
                body.push_str(&format!(",{}", field(&pre.target.labels[classes[i] as usize])));
                for s in scores {
                    body.push_str(&format!(",{s}"));
                }
            }
            body.push('\n');
            logged += 1;
        }
        if logged == 0 {
            return;
        }
        match self.queue.try_send(Lines { header, body }) {
            Ok(()) => self.counters.rows.fetch_add(logged, Ordering::Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.counters.dropped.fetch_add(logged, Ordering::Relaxed),
        };
    }
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

struct Writer {
    opts: LogOptions,
    /// The header of the file being written (none before the first write).
    header: Option<String>,
    size: u64,
}

impl Writer {
    fn write(&mut self, lines: &Lines) -> std::io::Result<()> {
        let path = self.opts.path.clone();
        if self.header.is_none() {
            // An existing file with the same header is appended to; another one is rotated away.
            let existing = std::fs::read_to_string(&path).ok().and_then(|t| t.lines().next().map(str::to_string));
            if existing.as_deref() == Some(lines.header.as_str()) {
                self.size = std::fs::metadata(&path)?.len();
                self.header = existing;
            } else if existing.is_some() {
                self.rotate(&path)?;
            }
        }
        let changed = self.header.as_deref().is_some_and(|h| h != lines.header);
        if changed || (self.header.is_some() && self.size + lines.body.len() as u64 > self.opts.max_bytes) {
            self.rotate(&path)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        if self.header.is_none() {
            writeln!(f, "{}", lines.header)?;
            self.size = lines.header.len() as u64 + 1;
            self.header = Some(lines.header.clone());
        }
        f.write_all(lines.body.as_bytes())?;
        f.flush()?;
        self.size += lines.body.len() as u64;
        Ok(())
    }

    /// FILE -> FILE.1 -> FILE.2 ...; the oldest beyond `keep` is removed.
    fn rotate(&mut self, path: &Path) -> std::io::Result<()> {
        let name = |i: usize| PathBuf::from(format!("{}.{i}", path.display()));
        if self.opts.keep == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            let _ = std::fs::remove_file(name(self.opts.keep));
            for i in (1..self.opts.keep).rev() {
                if name(i).exists() {
                    std::fs::rename(name(i), name(i + 1))?;
                }
            }
            if path.exists() {
                std::fs::rename(path, name(1))?;
            }
        }
        self.header = None;
        self.size = 0;
        Ok(())
    }
}
