//! A data set of the user's own: a CSV file read into typed columns, its
//! schema inferred from the data.
//!
//! `modelwatch train --data FILE --target COLUMN` starts here. The file is
//! RFC 4180 (the csv crate) with a header line and a configurable
//! delimiter; spaces around a value are ignored. It is read twice: the
//! first pass infers each column's type (numeric when every present value
//! parses as a finite number, categorical otherwise, with at most
//! `max_levels` levels), the second fills the typed columns. So the memory
//! beyond the typed columns themselves (8 bytes a numeric cell, 4 a
//! categorical one) is one record and the levels: the text of the file is
//! never held whole.
//!
//! Every bad input is refused with an error that names the file, the line
//! and the column, before anything is written: a path that is not a
//! regular file, a file over `max_bytes`, text that is not UTF-8, a ragged
//! row, a header with an empty or a repeated name, more than `max_columns`
//! columns, a column with too many levels or a level over
//! [`MAX_LEVEL_BYTES`], no rows. Missing values (an empty cell, `NA`,
//! `NaN`) follow [`Missing`]: the rows that have one are left out and
//! counted, or the file is refused naming the first, or (`keep`) the
//! cell is kept as missing ([`MISSING_CODE`], a NaN number) unless it is
//! in a [`ReadOptions::required`] column (the target), whose missing
//! cells leave the row out. Everything quoted from the file is escaped
//! and bounded.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::text::{bounded_text, shown_path};

/// The cells that count as missing (after trimming spaces).
pub const MISSING_TOKENS: [&str; 3] = ["", "NA", "NaN"];

/// Longest level of a categorical column, in bytes.
pub const MAX_LEVEL_BYTES: usize = 256;

/// Names a column cannot have: the monitor names its own figures so
/// (`prediction_p`, `dataset_drift` in `metrics_over_time.csv`, the
/// `prediction` series of its metrics, `drift.prediction` in rules).
pub const RESERVED_NAMES: [&str; 2] = ["prediction", "dataset"];

/// Largest |value| of a numeric cell: beyond it a square (a variance, a
/// least-squares fit) overflows. The same bound as a target or prediction
/// on the wire (`core::messages::MAX_ABS_VALUE`).
pub const MAX_ABS_CELL: f64 = 1e100;

/// Longest column name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// How a row with a missing value is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Left out of the data, counted and said.
    Omit,
    /// The file is refused, naming the first such cell.
    Refuse,
    // (Plain text: clap shows these comments in `--help`.)
    /// The row is kept with the cell missing (`run` with a trained model;
    /// `train` leaves such rows out); a row missing its target is left out.
    Keep,
}

/// A categorical cell that is missing ([`Missing::Keep`]).
pub const MISSING_CODE: u32 = u32::MAX;

/// The bounds and choices of a read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub delimiter: u8,
    /// Largest file read, in bytes.
    pub max_bytes: u64,
    /// Most levels of a categorical column (and classes of a target).
    pub max_levels: usize,
    /// Most columns, the target included.
    pub max_columns: usize,
    pub missing: Missing,
    /// Columns read past, neither typed nor kept (an id column); each must
    /// be in the header.
    pub skip: Vec<String>,
    /// The columns read (empty: all but `skip`): the others are read past
    /// like `skip`, but need not be in the header (a run of a trained
    /// model reads its columns only: another column's empty cells, levels
    /// or values do not count).
    pub only: Vec<String>,
    /// Columns categorical even when every value is a number (codes, zip
    /// codes, class numbers); each must be in the header. Their levels are
    /// the values as written: `01` and `1` are two levels.
    pub categorical: Vec<String>,
    /// Columns a model reads as categorical: read so when they are in the
    /// header (the model's own check names one that is not).
    pub model_categorical: Vec<String>,
    /// Columns a model reads as numbers: a value that is not one is
    /// refused, naming its line.
    pub model_numeric: Vec<String>,
    /// The values declared allowed in some columns (`[[data.columns]]`);
    /// each column must be in the header, and a value outside is refused
    /// naming its line.
    pub allowed: Vec<Allowed>,
    /// Columns without which a row is left out, even with
    /// [`Missing::Keep`] (the target: a row without its truth cannot be
    /// judged).
    pub required: Vec<String>,
}

impl ReadOptions {
    /// Is column `name` read (typed and kept)?
    fn reads(&self, name: &str) -> bool {
        !self.skip.iter().any(|s| s == name)
            && (self.only.is_empty() || self.only.iter().any(|o| o == name))
    }
}

/// The values one column may hold, as declared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allowed {
    pub column: String,
    /// A numeric column's least and greatest value.
    pub range: Option<(f64, f64)>,
    /// A categorical column's levels (empty: any).
    pub levels: Vec<String>,
    /// A number matches a level that is the number as the fit writes a
    /// class (`1.0` is the class `1`, `-0` the class `0`).
    pub levels_as_numbers: bool,
    /// Where the bound comes from, for the message (`data.columns`).
    pub declared_by: &'static str,
}

impl Allowed {
    /// Why `cell` (not missing) is not allowed, if it is not.
    pub fn refuses(&self, cell: &str, number: Option<f64>) -> Option<String> {
        if let (Some((lo, hi)), Some(v)) = (self.range, number) {
            if !(lo..=hi).contains(&v) {
                return Some(format!(
                    "{v} is outside the declared range {lo} to {hi} ({})",
                    self.declared_by
                ));
            }
        }
        let as_number = number
            .filter(|_| self.levels_as_numbers)
            .map(number_as_level);
        let matches = |l: &String| l == cell || as_number.as_ref() == Some(l);
        if !self.levels.is_empty() && !self.levels.iter().any(matches) {
            return Some(format!(
                "{} is not one of {} {}",
                quoted(cell),
                self.declared_by,
                names_of(self.levels.iter().map(String::as_str))
            ));
        }
        None
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            delimiter: b',',
            max_bytes: 1 << 30,
            max_levels: 100,
            max_columns: 1000,
            missing: Missing::Omit,
            skip: Vec::new(),
            only: Vec::new(),
            categorical: Vec::new(),
            model_categorical: Vec::new(),
            model_numeric: Vec::new(),
            allowed: Vec::new(),
            required: Vec::new(),
        }
    }
}

/// The type of a column, with the levels of a categorical one (sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnKind {
    Numeric,
    Categorical { levels: Vec<String> },
}

/// One column of the schema: its name as the header gives it, its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// No `deny_unknown_fields`: serde does not support it with `flatten`; the
// artifact's reader checks for unknown fields itself
// (`model::tabular::TabularModel::load`).
pub struct ColumnSchema {
    pub name: String,
    #[serde(flatten)]
    pub kind: ColumnKind,
}

/// The values of one column: numbers, or indices into the levels.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numeric(Vec<f64>),
    Categorical(Vec<u32>),
}

/// A typed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub schema: ColumnSchema,
    pub values: Values,
}

/// A CSV file read into typed columns (rows with a missing value left out).
#[derive(Debug, Clone)]
pub struct Table {
    /// In the header's order.
    pub columns: Vec<Column>,
    /// Rows kept.
    pub rows: usize,
    /// Rows left out for a missing value ([`Missing::Omit`]).
    pub omitted: usize,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
}

/// A bad input, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{file}: {problem}")]
    File { file: String, problem: String },
    #[error("{file}: line {line}: {problem}")]
    Line {
        file: String,
        line: u64,
        problem: String,
    },
    #[error("{file}: line {line}, column {column}: {problem}")]
    Cell {
        file: String,
        line: u64,
        /// The column's name, quoted and bounded.
        column: String,
        problem: String,
    },
}

/// A column name or a cell as an error quotes it: escaped and bounded.
pub fn quoted(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", bounded_text(&escaped, 64))
}

/// A number as a class (a level) is written: as Rust writes it, `-0`
/// as `0` (`1.0` is the class `1`).
pub fn number_as_level(v: f64) -> String {
    (v + 0.0).to_string()
}

/// True for a cell that counts as missing.
pub fn is_missing(cell: &str) -> bool {
    MISSING_TOKENS.contains(&cell)
}

/// A finite number, or nothing.
pub fn parse_number(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A number beyond [`MAX_ABS_CELL`] (refused where it is read).
fn too_large(v: f64) -> bool {
    v.abs() > MAX_ABS_CELL
}

/// What the first pass learns of one column.
#[derive(Debug, Default)]
struct Seen {
    /// Every present value parsed as a finite number so far.
    numeric: bool,
    /// The first line whose value is not a number, and that value.
    not_a_number_at: Option<u64>,
    first_not_a_number: Option<String>,
    /// The distinct values, while there are at most `max_levels`.
    levels: BTreeSet<String>,
    /// The line where the levels went past `max_levels`.
    too_many_at: Option<u64>,
    /// The first level over [`MAX_LEVEL_BYTES`], with its line.
    too_long_at: Option<u64>,
}

impl Table {
    /// Reads `path` (see the module's comment for what is refused).
    pub fn read(path: &Path, options: &ReadOptions) -> Result<Table, TableError> {
        let file = shown_path(path);
        let (header, seen, sha256) = first_pass(path, &file, options)?;
        let declared: Vec<String> = options.allowed.iter().map(|a| a.column.clone()).collect();
        let named = [
            (&options.skip, "--id, data.id"),
            (&options.categorical, "--categorical, data.categorical"),
            (&declared, "data.columns"),
        ];
        for (names, flag) in named {
            if let Some(name) = names.iter().find(|n| !header.contains(n)) {
                return Err(TableError::File {
                    file,
                    problem: format!(
                        "no column {} ({flag}); the columns are {}",
                        quoted(name),
                        names_of(header.iter().map(String::as_str))
                    ),
                });
            }
        }
        let kept: Vec<bool> = header.iter().map(|h| options.reads(h)).collect();
        let schema: Vec<ColumnSchema> = header
            .iter()
            .zip(seen)
            .zip(&kept)
            .filter(|(_, keep)| **keep)
            .map(|((name, seen), _)| column_schema(&file, name, seen, options))
            .collect::<Result<_, _>>()?;
        let (columns, rows, omitted) = second_pass(path, &file, schema, &kept, &sha256, options)?;
        if rows == 0 {
            return Err(TableError::File {
                file,
                problem: format!("no rows left ({omitted} left out for a missing value)"),
            });
        }
        Ok(Table {
            columns,
            rows,
            omitted,
            sha256,
        })
    }

    /// The column named `name`, with its index.
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.schema.name == name)
    }

    /// The names of the columns, quoted, for an error (at most 20).
    pub fn names(&self) -> String {
        names_of(self.columns.iter().map(|c| c.schema.name.as_str()))
    }
}

/// Names quoted for an error, at most 20 and then a count.
pub fn names_of<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = names.len();
    let mut shown: Vec<String> = names.take(20).map(quoted).collect();
    if n > 20 {
        shown.push(format!("and {} more", n - 20));
    }
    shown.join(", ")
}

/// Opens `path` for reading: a regular file of at most `max_bytes`, read
/// with that bound (a file that grows while it is read is cut there and
/// caught by the row counts of the two passes).
fn open(
    path: &Path,
    file: &str,
    options: &ReadOptions,
    pass: u8,
) -> Result<FileReader, TableError> {
    let err = |problem: String| TableError::File {
        file: file.to_owned(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    if meta.len() > options.max_bytes {
        return Err(err(format!(
            "{} bytes, more than --max-bytes ({})",
            meta.len(),
            options.max_bytes
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    Ok(Progress {
        inner: std::io::BufReader::with_capacity(1 << 16, f).take(options.max_bytes),
        read: 0,
        total: meta.len(),
        pass,
        file: file.to_owned(),
        last: std::time::Instant::now(),
        line: 0,
    })
}

fn reader<R: Read>(input: R, options: &ReadOptions) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        // A line ends at "\n" ("\r\n" too: the "\r" is trimmed). With
        // the default (CRLF or LF) the csv crate names the line before
        // the right one in a CRLF file.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(input)
}

/// A csv error as a [`TableError`] with its line.
fn csv_error(file: &str, e: csv::Error) -> TableError {
    let line = e.position().map(|p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("not UTF-8 text (field {})", err.field() + 1)
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, the header has {expected_len}"),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => bounded_text(&e.to_string(), 200),
    };
    match line {
        Some(line) => TableError::Line {
            file: file.to_owned(),
            line,
            problem,
        },
        None => TableError::File {
            file: file.to_owned(),
            problem,
        },
    }
}

/// Longest line (record) read, in bytes: the csv reader holds one whole
/// record, so this bounds its memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How often a long read says how far it is.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Counts what it reads, and logs the share read every [`PROGRESS_EVERY`]
/// (a file read within that says nothing).
struct Progress<R> {
    inner: R,
    read: u64,
    total: u64,
    pass: u8,
    file: String,
    last: std::time::Instant,
    /// Bytes since the last line break.
    line: usize,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.line = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => n - i - 1,
            None => self.line + n,
        };
        if self.line > MAX_LINE_BYTES {
            return Err(std::io::Error::other(format!(
                "a line longer than {} MB",
                MAX_LINE_BYTES >> 20
            )));
        }
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = std::time::Instant::now();
            tracing::info!(
                "reading {}: pass {} of 2, {}% ({} of {} MB)",
                self.file,
                self.pass,
                self.read * 100 / self.total.max(1),
                self.read >> 20,
                self.total >> 20
            );
        }
        Ok(n)
    }
}

/// Hashes what it reads.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

/// The file as a pass reads it: bounded, buffered, counted.
type FileReader = Progress<std::io::Take<std::io::BufReader<std::fs::File>>>;

impl Hashing<FileReader> {
    /// Opens `path` for pass `pass` of a read, hashing what it reads.
    fn open(path: &Path, file: &str, options: &ReadOptions, pass: u8) -> Result<Self, TableError> {
        Ok(Hashing {
            inner: open(path, file, options, pass)?,
            hasher: Sha256::new(),
        })
    }
}

impl<R: Read> Hashing<R> {
    /// Reads the rest of the file (where the csv reader stopped before its
    /// end) and returns the hex sha256 of all of it.
    fn finish(mut self, file: &str) -> Result<String, TableError> {
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|e| TableError::File {
            file: file.to_owned(),
            problem: e.to_string(),
        })?;
        Ok(hex(self.hasher.finalize().as_slice()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Checks the header and learns each column's type.
fn first_pass(
    path: &Path,
    file: &str,
    options: &ReadOptions,
) -> Result<(Vec<String>, Vec<Seen>, String), TableError> {
    let mut hashing = Hashing::open(path, file, options, 1)?;
    let mut rdr = reader(&mut hashing, options);
    let header = check_header(file, &mut rdr, options)?;
    let reads: Vec<bool> = header.iter().map(|h| options.reads(h)).collect();
    let mut seen: Vec<Seen> = header
        .iter()
        .map(|_| Seen {
            numeric: true,
            ..Seen::default()
        })
        .collect();
    let mut record = csv::StringRecord::new();
    while rdr
        .read_record(&mut record)
        .map_err(|e| csv_error(file, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        for (j, (cell, s)) in record.iter().zip(seen.iter_mut()).enumerate() {
            if is_missing(cell) || !reads[j] {
                continue;
            }
            match parse_number(cell) {
                Some(v) if too_large(v) => {
                    return Err(TableError::Cell {
                        file: file.to_owned(),
                        line,
                        column: quoted(&header[j]),
                        problem: format!(
                            "{} is beyond ±{MAX_ABS_CELL:e}, larger than any fit or statistic here can take",
                            quoted(cell)
                        ),
                    });
                }
                None if s.numeric => {
                    s.numeric = false;
                    s.not_a_number_at = Some(line);
                    s.first_not_a_number = Some(bounded_text(cell, MAX_LEVEL_BYTES));
                }
                _ => {}
            }
            if s.too_many_at.is_some() || s.levels.contains(cell) {
                continue;
            }
            if cell.len() > MAX_LEVEL_BYTES {
                s.too_long_at.get_or_insert(line);
            } else if s.levels.len() == options.max_levels {
                s.too_many_at = Some(line);
                s.levels.clear();
            } else {
                s.levels.insert(cell.to_owned());
            }
        }
    }
    drop(rdr);
    Ok((header, seen, hashing.finish(file)?))
}

/// The header: at least one column, at most `max_columns`, every name
/// present, bounded and given once.
fn check_header<R: Read>(
    file: &str,
    rdr: &mut csv::Reader<R>,
    options: &ReadOptions,
) -> Result<Vec<String>, TableError> {
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(file, e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let line_err = |problem: String| TableError::Line {
        file: file.to_owned(),
        line: 1,
        problem,
    };
    if header.len() < 2 {
        return Err(line_err(format!(
            "the header has {} column(s); a data set needs a target and at least one feature \
             (is the delimiter {:?}?)",
            header.len(),
            options.delimiter as char
        )));
    }
    if header.len() > options.max_columns {
        return Err(line_err(format!(
            "{} columns, more than {}",
            header.len(),
            options.max_columns
        )));
    }
    let mut names = BTreeSet::new();
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            return Err(line_err(format!("column {} has no name", i + 1)));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(line_err(format!(
                "column {} {} is longer than {MAX_NAME_BYTES} bytes",
                i + 1,
                quoted(name)
            )));
        }
        if name.chars().any(crate::core::text::needs_escape) {
            return Err(line_err(format!(
                "column {} {} has a control or invisible character (a line break, a tab, an \
                 escape, a bidirectional override, a zero-width space): names are shown in \
                 files, logs and metrics",
                i + 1,
                quoted(name)
            )));
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(line_err(format!(
                "column {} is named {}, a name the monitor gives its own figures (the model's \
                 prediction, the dataset's drift): rename it",
                i + 1,
                quoted(name)
            )));
        }
        if !names.insert(name.as_str()) {
            return Err(line_err(format!("column {} is named twice", quoted(name))));
        }
    }
    Ok(header)
}

/// The type of one column from what the first pass saw.
fn column_schema(
    file: &str,
    name: &str,
    seen: Seen,
    options: &ReadOptions,
) -> Result<ColumnSchema, TableError> {
    if let (Some(line), true) = (
        seen.not_a_number_at,
        options.model_numeric.iter().any(|c| c == name),
    ) {
        return Err(TableError::Cell {
            file: file.to_owned(),
            line,
            column: quoted(name),
            problem: format!(
                "{} is not a number; the model reads this column as numbers",
                quoted(seen.first_not_a_number.as_deref().unwrap_or_default())
            ),
        });
    }
    let declared = options.categorical.iter().chain(&options.model_categorical);
    if seen.numeric && !declared.into_iter().any(|c| c == name) {
        return Ok(ColumnSchema {
            name: name.to_owned(),
            kind: ColumnKind::Numeric,
        });
    }
    let cell = |line: u64, problem: String| TableError::Cell {
        file: file.to_owned(),
        line,
        column: quoted(name),
        problem,
    };
    if let Some(line) = seen.too_long_at {
        return Err(cell(
            line,
            format!("a categorical value longer than {MAX_LEVEL_BYTES} bytes"),
        ));
    }
    if let Some(line) = seen.too_many_at {
        return Err(cell(
            line,
            format!(
                "categorical ({}) with more than {} levels (--max-levels)",
                match seen.not_a_number_at {
                    Some(line) => format!("line {line} is not a number"),
                    None => "--categorical".to_owned(),
                },
                options.max_levels
            ),
        ));
    }
    Ok(ColumnSchema {
        name: name.to_owned(),
        kind: ColumnKind::Categorical {
            levels: seen.levels.into_iter().collect(),
        },
    })
}

/// Fills the typed columns; rows with a missing value are left out or
/// refused.
fn second_pass(
    path: &Path,
    file: &str,
    schema: Vec<ColumnSchema>,
    kept: &[bool],
    sha256: &str,
    options: &ReadOptions,
) -> Result<(Vec<Column>, usize, usize), TableError> {
    let mut hashing = Hashing::open(path, file, options, 2)?;
    let mut rdr = reader(&mut hashing, options);
    let header = check_header(file, &mut rdr, options)?;
    let mut columns: Vec<Column> = schema
        .into_iter()
        .map(|schema| {
            let values = match schema.kind {
                ColumnKind::Numeric => Values::Numeric(Vec::new()),
                ColumnKind::Categorical { .. } => Values::Categorical(Vec::new()),
            };
            Column { schema, values }
        })
        .collect();
    let changed = || TableError::File {
        file: file.to_owned(),
        problem: "changed while it was read".into(),
    };
    if header.len() != kept.len() {
        return Err(changed());
    }
    let (mut rows, mut omitted) = (0, 0);
    // The declared values of each kept column (`None`: any).
    let allowed: Vec<Option<&Allowed>> = columns
        .iter()
        .map(|c| options.allowed.iter().find(|a| a.column == c.schema.name))
        .collect();
    let required: Vec<bool> = columns
        .iter()
        .map(|c| options.required.contains(&c.schema.name))
        .collect();
    let mut record = csv::StringRecord::new();
    while rdr
        .read_record(&mut record)
        .map_err(|e| csv_error(file, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let mut cells = record.iter().zip(kept).filter(|(_, k)| **k).map(|(c, _)| c);
        let omits = |j: usize| options.missing != Missing::Keep || required[j];
        if let Some(j) = cells
            .clone()
            .enumerate()
            .position(|(j, c)| is_missing(c) && omits(j))
        {
            if options.missing == Missing::Refuse {
                return Err(TableError::Cell {
                    file: file.to_owned(),
                    line,
                    column: quoted(&columns[j].schema.name),
                    problem: "a missing value (--missing refuse)".into(),
                });
            }
            omitted += 1;
            continue;
        }
        for ((cell, col), allowed) in cells.by_ref().zip(columns.iter_mut()).zip(&allowed) {
            if is_missing(cell) {
                // Kept as missing (Missing::Keep), not checked against the declarations.
                match &mut col.values {
                    Values::Numeric(v) => v.push(f64::NAN),
                    Values::Categorical(v) => v.push(MISSING_CODE),
                }
                continue;
            }
            if let Some(problem) = allowed.and_then(|a| a.refuses(cell, parse_number(cell))) {
                return Err(TableError::Cell {
                    file: file.to_owned(),
                    line,
                    column: quoted(&col.schema.name),
                    problem,
                });
            }
            match (&mut col.values, &col.schema.kind) {
                (Values::Numeric(v), _) => v.push(parse_number(cell).ok_or_else(changed)?),
                (Values::Categorical(v), ColumnKind::Categorical { levels }) => {
                    let i = levels
                        .binary_search_by(|l| l.as_str().cmp(cell))
                        .map_err(|_| changed())?;
                    v.push(i as u32);
                }
                (Values::Categorical(_), ColumnKind::Numeric) => unreachable!("built together"),
            }
        }
        rows += 1;
    }
    drop(rdr);
    // The same bytes both times, or the schema and the rows may be of two files.
    if hashing.finish(file)? != sha256 {
        return Err(changed());
    }
    prune_levels(&mut columns);
    Ok((columns, rows, omitted))
}

/// Levels no kept row has (they were only in rows left out for a missing
/// value) are dropped from the schema, the indices renumbered.
fn prune_levels(columns: &mut [Column]) {
    for c in columns {
        let (ColumnKind::Categorical { levels }, Values::Categorical(v)) =
            (&mut c.schema.kind, &mut c.values)
        else {
            continue;
        };
        let mut used = vec![false; levels.len()];
        for &i in v.iter().filter(|&&i| i != MISSING_CODE) {
            used[i as usize] = true;
        }
        if used.iter().all(|u| *u) {
            continue;
        }
        let mut new_index = vec![0u32; levels.len()];
        let mut next = 0;
        for (i, u) in used.iter().enumerate() {
            new_index[i] = next;
            next += u32::from(*u);
        }
        let mut i = 0;
        levels.retain(|_| {
            i += 1;
            used[i - 1]
        });
        for x in v.iter_mut().filter(|x| **x != MISSING_CODE) {
            *x = new_index[*x as usize];
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], options: &ReadOptions) -> Result<Table, TableError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, text).unwrap();
        Table::read(&path, options)
    }

    #[test]
    fn types_are_inferred_and_levels_sorted() {
        let t = read(
            b"x,color,y\n1.5,red,3\n2,blue,4\n-1e3, red ,5\n",
            &ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(t.rows, 3);
        assert_eq!(
            t.columns[0].values,
            Values::Numeric(vec![1.5, 2.0, -1000.0])
        );
        assert_eq!(
            t.columns[1].schema.kind,
            ColumnKind::Categorical {
                levels: vec!["blue".into(), "red".into()]
            }
        );
        assert_eq!(t.columns[1].values, Values::Categorical(vec![1, 0, 1]));
        assert_eq!(t.sha256.len(), 64);
    }

    #[test]
    fn missing_rows_are_left_out_or_refused_with_line_and_column() {
        let text = b"x,y\n1,2\nNA,3\n4,\n5,6\n";
        let t = read(text, &ReadOptions::default()).unwrap();
        assert_eq!((t.rows, t.omitted), (2, 2));
        let refuse = ReadOptions {
            missing: Missing::Refuse,
            ..ReadOptions::default()
        };
        let e = read(text, &refuse).unwrap_err().to_string();
        assert!(e.contains("line 3, column \"x\": a missing value"), "{e}");
    }

    #[test]
    fn bad_files_are_named_with_their_line() {
        let o = ReadOptions::default();
        let e = read(b"x,y\n1,2\n3\n", &o).unwrap_err().to_string();
        assert!(e.contains("line 3: 1 fields, the header has 2"), "{e}");
        let e = read(b"x,y\n1,2\n3,\xff\n", &o).unwrap_err().to_string();
        assert!(e.contains("line 3: not UTF-8"), "{e}");
        let e = read(b"x,x\n1,2\n", &o).unwrap_err().to_string();
        assert!(e.contains("line 1: column \"x\" is named twice"), "{e}");
        let e = read(b"x;y\n1;2\n", &o).unwrap_err().to_string();
        assert!(e.contains("1 column(s)"), "{e}");
        let e = read(b"x,y\n", &o).unwrap_err().to_string();
        assert!(e.contains("no rows"), "{e}");
        let few = ReadOptions {
            max_levels: 2,
            ..ReadOptions::default()
        };
        let e = read(b"c,y\na,1\nb,2\na,3\nz,4\n", &few)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 5, column \"c\": categorical") && e.contains("more than 2 levels"),
            "{e}"
        );
        let small = ReadOptions {
            max_bytes: 4,
            ..ReadOptions::default()
        };
        let e = read(b"x,y\n1,2\n", &small).unwrap_err().to_string();
        assert!(e.contains("more than --max-bytes (4)"), "{e}");
    }

    #[test]
    fn a_skipped_column_is_not_typed_and_must_exist() {
        let skip = ReadOptions {
            skip: vec!["id".into()],
            max_levels: 2,
            ..ReadOptions::default()
        };
        // The id has more levels than allowed and a missing cell: neither counts.
        let t = read(b"id,x,y\na,1,2\nb,3,4\n,5,6\nd,7,8\n", &skip).unwrap();
        assert_eq!((t.rows, t.omitted, t.columns.len()), (4, 0, 2));
        assert_eq!(
            t.columns[0].values,
            Values::Numeric(vec![1.0, 3.0, 5.0, 7.0])
        );
        let e = read(b"x,y\n1,2\n", &skip).unwrap_err().to_string();
        assert!(e.contains("no column \"id\" (--id, data.id)"), "{e}");
    }

    #[test]
    fn a_column_not_read_leaves_no_row_out_and_refuses_nothing() {
        let only = ReadOptions {
            only: vec!["x".into(), "y".into(), "absent".into()],
            max_levels: 2,
            ..ReadOptions::default()
        };
        // "notes": empty cells, too many levels, a value past the bound.
        let t = read(b"notes,x,y\na,1,2\n,3,4\n1e200,5,6\nd,7,8\n", &only).unwrap();
        assert_eq!((t.rows, t.omitted, t.columns.len()), (4, 0, 2));
        let all = ReadOptions {
            max_levels: 2,
            ..ReadOptions::default()
        };
        assert!(read(b"notes,x,y\na,1,2\n,3,4\nc,5,6\nd,7,8\n", &all).is_err());
    }

    #[test]
    fn numbers_can_be_declared_categorical_as_written() {
        let o = ReadOptions {
            categorical: vec!["zip".into()],
            ..ReadOptions::default()
        };
        let t = read(b"zip,y\n01234,1\n1234,2\n01234,3\n", &o).unwrap();
        assert_eq!(
            t.columns[0].schema.kind,
            ColumnKind::Categorical {
                levels: vec!["01234".into(), "1234".into()]
            }
        );
        let e = read(b"x,y\n1,2\n", &o).unwrap_err().to_string();
        assert!(
            e.contains("no column \"zip\" (--categorical, data.categorical)"),
            "{e}"
        );
    }

    #[test]
    fn a_directory_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = Table::read(dir.path(), &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn crlf_files_name_the_right_line() {
        let o = ReadOptions::default();
        for eol in ["\n", "\r\n"] {
            let text = format!("a,b,y{eol}1,x,3{eol}1,x{eol}");
            let e = read(text.as_bytes(), &o).unwrap_err().to_string();
            assert!(e.contains("line 3: 2 fields"), "{eol:?}: {e}");
        }
        let t = read(b"a,b,y\r\n1,\"x\",3\r\n2,z,4\r\n", &o).unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(
            t.columns[1].schema.kind,
            ColumnKind::Categorical {
                levels: vec!["x".into(), "z".into()]
            }
        );
    }

    #[test]
    fn names_with_invisible_characters_and_reserved_names_are_refused() {
        let o = ReadOptions::default();
        for header in [
            "\"a\tb\",y",
            "\"a\u{202e}b\",y",
            "prediction,y",
            "dataset,y",
        ] {
            let text = format!("{header}\n1,2\n");
            let e = read(text.as_bytes(), &o).unwrap_err().to_string();
            assert!(e.contains("line 1"), "{header}: {e}");
        }
    }

    #[test]
    fn a_number_beyond_the_bound_is_refused_where_it_is() {
        let e = read(b"a,y\n1,2\n1e300,3\n", &ReadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3, column \"a\""), "{e}");
        assert!(e.contains("beyond"), "{e}");
    }

    #[test]
    fn a_column_a_model_reads_as_numbers_names_its_first_other_value() {
        let o = ReadOptions {
            model_numeric: vec!["a".into()],
            ..ReadOptions::default()
        };
        let e = read(b"a,y\n1,2\nabc,3\nxyz,4\n", &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3, column \"a\": \"abc\" is not a number"),
            "{e}"
        );
    }
}
