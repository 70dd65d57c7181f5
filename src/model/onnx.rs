//! A model exported to ONNX (scikit-learn through skl2onnx, XGBoost and
//! LightGBM through onnxmltools, PyTorch, TensorFlow), run by ONNX Runtime
//! through ort.
//!
//! ort is built with `load-dynamic`: nothing is downloaded at build time,
//! and the runtime library is opened when the first ONNX model is, from
//! `model.onnxruntime` or `ORT_DYLIB_PATH` ([`Runtime`]). ONNX Runtime 1.17
//! or later will do (ort asks for API 17); the tests run 1.32.0, the
//! `onnxruntime` wheel on PyPI, which ships the library as
//! `site-packages/onnxruntime/capi/libonnxruntime.so.<version>`.
//!
//! An ONNX file does not say which data columns it reads, nor the training
//! distributions the monitor compares with: `train --data --target --model
//! FILE.onnx` wraps it in an artifact of the user's own data
//! ([`super::tabular`], `model.kind = "onnx"`), with the file's sha256, the
//! way its inputs take a row ([`Inputs`]) and the output it reads, all
//! checked against the data there and again at every load ([`Session::open`]).
//!
//! Inference runs once per batch of rows ([`Session::run`]): one call into
//! ONNX Runtime for the whole batch, on `model.threads` intra-op threads
//! (default 1, so that model workers scale by process).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use serde::{Deserialize, Serialize};

use crate::core::table::{quoted, ColumnKind};

/// Largest ONNX file read (a 300-tree forest is tens of MB).
pub const MAX_ONNX_BYTES: u64 = 1 << 30;

/// Largest |value| sent to a model's float inputs: well inside `f32`, so
/// that no input reaches the model as infinity.
pub const MAX_ABS_ONNX_INPUT: f64 = 1e30;

pub use crate::config::model::MAX_THREADS;

/// How to get the runtime library, for the errors that need it.
pub const RUNTIME_HINT: &str = "ONNX models need the ONNX Runtime library, 1.17 or later \
     (1.32.0 tested): `python3 -m pip install onnxruntime` ships it as \
     site-packages/onnxruntime/capi/libonnxruntime.so.<version>; set model.onnxruntime \
     (MODELWATCH__MODEL__ONNXRUNTIME) or ORT_DYLIB_PATH to that file";

/// Whether `path` names an ONNX file (by its `.onnx` extension, any case):
/// not an artifact `run` reads, nor one `train` writes.
pub fn is_onnx_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The type of a model input's elements that modelwatch can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Element {
    /// `tensor(float)`: a numeric column's value as f32.
    Float,
    /// `tensor(double)`: a numeric column's value.
    Double,
    /// `tensor(string)`: a categorical column's level, as text.
    String,
}

/// How the model's inputs take a row: what skl2onnx exports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "snake_case", deny_unknown_fields)]
pub enum Inputs {
    /// One tensor `[rows, columns]` of every feature column, in the
    /// artifact's order (`to_onnx(model, X[:1])`): numeric columns only.
    Tensor { name: String, element: Element },
    /// One tensor `[rows, 1]` per feature column, named as the column
    /// (`initial_types` per column, as a `ColumnTransformer` is exported).
    Columns { elements: Vec<Element> },
}

impl RuntimeOptions {
    /// What `[model]` says an ONNX model needs to be opened.
    pub fn of(m: &crate::config::ModelSettings) -> RuntimeOptions {
        RuntimeOptions {
            library: (!m.onnxruntime.as_os_str().is_empty()).then(|| m.onnxruntime.clone()),
            threads: m.threads,
            batch_rows: m.batch_rows,
        }
    }
}

impl Inputs {
    /// As a person reads it: `one float tensor "X"`, `one input per column`.
    pub fn describe(&self) -> String {
        match self {
            Inputs::Tensor { name, element } => {
                let element = match element {
                    Element::Float => "float",
                    Element::Double => "double",
                    Element::String => "string",
                };
                format!("one {element} tensor {}", quoted(name))
            }
            Inputs::Columns { .. } => "one input per column".to_owned(),
        }
    }
}

/// The ONNX part of an artifact (`"model": {"kind": "onnx", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxModel {
    /// The ONNX file: relative to the artifact's folder, or absolute.
    pub file: String,
    /// sha256 of the file, checked at every load: another model under the
    /// same name is refused, not run against this reference.
    pub sha256: String,
    pub inputs: Inputs,
    /// The output read: a regression's values (`[rows]` or `[rows, 1]`),
    /// a classifier's probabilities (`[rows, classes]`).
    pub output: String,
    /// A classifier's classes, in the order of the probability columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// Where the runtime library is and how many threads a session uses
/// (`[model]`).
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// `model.onnxruntime`; `None`: `ORT_DYLIB_PATH`.
    pub library: Option<PathBuf>,
    pub threads: usize,
    /// Most rows per run of the model (`model.batch_rows`).
    pub batch_rows: usize,
}

/// Why an ONNX model cannot be used: what, naming the input or output.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OnnxError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, OnnxError> {
    Err(OnnxError(what.into()))
}

/// ONNX Runtime's own message, bounded and printable.
fn ort_text(e: &ort::Error) -> String {
    crate::core::text::bounded_text(&e.to_string(), 300)
}

/// The process's ONNX Runtime environment: the library opened once (ort
/// allows one per process), or why it could not be.
struct Runtime;

impl Runtime {
    fn get(library: Option<&Path>) -> Result<&'static ort::environment::Environment, OnnxError> {
        static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
        ENV.get_or_init(|| Self::open(library))
            .as_ref()
            .map_err(|e| OnnxError(e.clone()))
    }

    fn open(library: Option<&Path>) -> Result<ort::environment::Environment, String> {
        // The env value is not shown (it may be anything); the config's
        // path is, bounded.
        let (path, named) = match library {
            Some(p) => (
                p.to_path_buf(),
                format!("model.onnxruntime {}", crate::core::text::shown_path(p)),
            ),
            None => match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
                Some(p) => (PathBuf::from(p), "ORT_DYLIB_PATH".to_owned()),
                None => {
                    return Err(format!(
                        "no ONNX Runtime library: model.onnxruntime is empty and ORT_DYLIB_PATH \
                         is not set. {RUNTIME_HINT}"
                    ))
                }
            },
        };
        // A shared library is often a link to its versioned file: follow
        // it, but only to a regular file.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(format!("{named} is not a regular file. {RUNTIME_HINT}")),
            Err(e) => return Err(format!("{named}: {e}. {RUNTIME_HINT}")),
        }
        // A truncated library crashes dlopen itself (SIGBUS): its ELF
        // header and section table must be within the file.
        if let Err(why) = whole_elf(&path) {
            return Err(format!(
                "{named} cannot be loaded as ONNX Runtime: {why}. {RUNTIME_HINT}"
            ));
        }
        // A relative path is taken from the working directory (ort would
        // try the executable's folder first).
        let path = std::path::absolute(&path).map_err(|e| format!("{named}: {e}"))?;
        let builder = ort::init_from(&path).map_err(|e| {
            // Said without the path (ort's own text has it: an env value).
            use ort::LoadDynamicError as L;
            let why = match e {
                L::Dlopen { .. } => "not a shared library this system can open".to_owned(),
                L::MissingApi { .. } => {
                    "it does not export OrtGetApiBase: not ONNX Runtime".to_owned()
                }
                L::InvalidVersionString => "its version string is malformed".to_owned(),
                L::BadVersion { version_str, .. } => format!(
                    "version {} is older than 1.17",
                    crate::core::text::bounded_text(&version_str, 40)
                ),
            };
            format!("{named} cannot be loaded as ONNX Runtime: {why}. {RUNTIME_HINT}")
        })?;
        builder
            .with_name("modelwatch")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("{named}: ONNX Runtime did not start: {}", ort_text(&e)))
    }
}

/// An ONNX model opened for inference, checked against the artifact.
pub struct Session {
    /// ort runs a session through `&mut`: one batch at a time.
    session: Mutex<ort::session::Session>,
    inputs: Inputs,
    /// Each input's name (one, or one per column).
    input_names: Vec<String>,
    output: String,
    /// A classifier's label output, read too by [`Session::run_with_labels`]
    /// (when the class order is checked).
    label: Option<String>,
    /// Probability columns (a classifier), 0 for a regression.
    classes: usize,
    /// Most rows per run.
    batch_rows: usize,
    /// Per feature column, a categorical one's levels (sent as text).
    levels: Vec<Option<Vec<String>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("onnx::Session")
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// A model ONNX Runtime has loaded, not yet checked against an artifact
/// ([`Session::from_committed`] does): loaded once, whether by `train`
/// (after [`Session::inspect`]) or by a run ([`Session::open`]).
pub struct Committed(ort::session::Session);

/// What the file's inputs and outputs are (read before an artifact
/// exists, by [`Session::inspect`]), and the model as loaded.
pub struct Signature {
    pub committed: Committed,
    pub inputs: Inputs,
    /// The probabilities output of a classifier, if the model has one.
    pub probabilities: Option<(String, usize)>,
    /// A classifier's label output, if any (to check the class order).
    pub label: Option<String>,
    /// A regression's value output.
    pub value: Option<String>,
}

impl Session {
    /// Reads the file (a regular file of at most [`MAX_ONNX_BYTES`]; a link
    /// is refused), and its sha256.
    pub fn read(path: &Path, key: &'static str) -> Result<(Vec<u8>, String), OnnxError> {
        use sha2::Digest;
        let shown = crate::core::text::shown_path(path);
        let bounds = super::artifact::Bounds {
            key,
            limit: MAX_ONNX_BYTES,
            why: "more than an ONNX model modelwatch runs",
            follow_links: false,
        };
        use super::artifact::ModelError;
        let bytes = super::artifact::read_bounded_bytes(path, &shown, &bounds).map_err(|e| {
            OnnxError(match e {
                ModelError::Io { source, .. } if key == "model.file" => format!(
                    "the ONNX file {shown} the artifact names: {source} (it is named beside \
                     the artifact, or by its absolute path: move the two together)"
                ),
                ModelError::Io { source, .. } => format!("{key} {shown}: {source}"),
                other => other.to_string(),
            })
        })?;
        let sha = format!("{:x}", sha2::Sha256::digest(&bytes));
        Ok((bytes, sha))
    }

    fn commit(
        bytes: &[u8],
        shown: &str,
        options: &RuntimeOptions,
    ) -> Result<ort::session::Session, OnnxError> {
        let env = Runtime::get(options.library.as_deref())?;
        let threads = options.threads.clamp(1, MAX_THREADS);
        ort::session::Session::builder(env)
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            // Its errors come back as results (and are logged, bounded,
            // by modelwatch): ONNX Runtime's own lines on stderr only for
            // a fatal one.
            .and_then(|b| {
                b.with_log_level(ort::logging::LogLevel::Fatal)
                    .map_err(Into::into)
            })
            .and_then(|mut b| b.commit_from_memory(bytes))
            .or_else(|e| {
                err(format!(
                    "{shown} is not an ONNX model ONNX Runtime can run: {}",
                    ort_text(&e)
                ))
            })
    }

    /// The inputs and outputs of the file at `path` as they fit `columns`
    /// (the data's feature columns, in order): exit-2 material naming the
    /// input or output that does not fit.
    pub fn inspect(
        bytes: &[u8],
        shown: &str,
        columns: &[(String, ColumnKind)],
        options: &RuntimeOptions,
    ) -> Result<Signature, OnnxError> {
        let s = Self::commit(bytes, shown, options)?;
        let inputs = inputs_of(&s, shown, columns)?;
        let mut probabilities = None;
        let mut label = None;
        let mut value = None;
        let mut zipmap = None;
        for o in s.outputs() {
            match o.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    let float =
                        matches!(ty, TensorElementType::Float32 | TensorElementType::Float64);
                    match (float, &shape[..]) {
                        (true, [_, k]) if *k != 1 => {
                            probabilities
                                .get_or_insert((o.name().to_owned(), (*k).max(0) as usize));
                        }
                        (true, [_] | [_, 1]) => {
                            value.get_or_insert(o.name().to_owned());
                        }
                        (false, [_] | [_, 1])
                            if matches!(
                                ty,
                                TensorElementType::Int64 | TensorElementType::String
                            ) =>
                        {
                            label.get_or_insert(o.name().to_owned());
                        }
                        _ => {}
                    }
                }
                ValueType::Sequence(_) | ValueType::Map { .. } => {
                    zipmap.get_or_insert(o.name().to_owned());
                }
                _ => {}
            }
        }
        if probabilities.is_none() && value.is_none() {
            if let Some(z) = zipmap {
                return err(format!(
                    "{shown}: output {} is a sequence of maps (scikit-learn's ZipMap): export the \
                     classifier with plain probabilities, skl2onnx.to_onnx(model, X[:1], \
                     options={{id(model): {{'zipmap': False}}}})",
                    quoted(&z)
                ));
            }
            return err(format!(
                "{shown}: no output modelwatch can read: a regression needs a float tensor \
                 [rows] or [rows, 1], a classifier one of [rows, classes]; the outputs are {}",
                describe(s.outputs().iter().map(|o| (o.name(), o.dtype())))
            ));
        }
        Ok(Signature {
            committed: Committed(s),
            inputs,
            probabilities,
            label,
            value,
        })
    }

    /// Opens the model of an artifact: the file's sha256 must be the
    /// artifact's, and its inputs and output what the artifact says.
    pub fn open(
        model: &OnnxModel,
        artifact: &Path,
        columns: &[(String, ColumnKind)],
        options: &RuntimeOptions,
    ) -> Result<Session, OnnxError> {
        let path = model.path(artifact);
        let shown = crate::core::text::shown_path(&path);
        let (bytes, sha) = Self::read(&path, "model.file")?;
        if sha != model.sha256 {
            return err(format!(
                "{shown} is not the ONNX file this artifact was made with (its sha256 differs): \
                 wrap it again with `modelwatch train --data FILE --target COLUMN --model {shown}`"
            ));
        }
        let committed = Committed(Self::commit(&bytes, &shown, options)?);
        Self::from_committed(model, committed, &shown, columns, options)
    }

    /// The session of `model` (an artifact's ONNX section) on the model
    /// ONNX Runtime loaded: its inputs and output what the artifact says.
    pub fn from_committed(
        model: &OnnxModel,
        committed: Committed,
        shown: &str,
        columns: &[(String, ColumnKind)],
        options: &RuntimeOptions,
    ) -> Result<Session, OnnxError> {
        let s = committed.0;
        let inputs = inputs_of(&s, shown, columns)?;
        if inputs != model.inputs {
            return err(format!(
                "{shown}: its inputs ({}) are not the artifact's ({}): is it the model the \
                 artifact was made with?",
                inputs.describe(),
                model.inputs.describe()
            ));
        }
        let classes = model.classes.as_ref().map_or(0, Vec::len);
        let found = s.outputs().iter().find(|o| o.name() == model.output);
        let fits = match found.map(|o| o.dtype()) {
            Some(ValueType::Tensor {
                ty: TensorElementType::Float32 | TensorElementType::Float64,
                shape,
                ..
            }) => match (classes, &shape[..]) {
                (0, [_] | [_, 1]) => true,
                (k, [_, w]) if k > 0 => *w == -1 || *w == k as i64,
                _ => false,
            },
            _ => false,
        };
        if !fits {
            return err(format!(
                "{shown}: output {} is not a float tensor of {}",
                quoted(&model.output),
                match classes {
                    0 => "[rows] or [rows, 1]".to_owned(),
                    k => format!("[rows, {k}]"),
                }
            ));
        }
        // The values are made in the order of `inputs`: one tensor, or
        // one per column in the columns' order.
        let input_names = match &inputs {
            Inputs::Tensor { name, .. } => vec![name.clone()],
            Inputs::Columns { .. } => columns.iter().map(|(n, _)| n.clone()).collect(),
        };
        Ok(Session {
            session: Mutex::new(s),
            inputs,
            input_names,
            output: model.output.clone(),
            label: None,
            classes,
            batch_rows: options.batch_rows.max(1),
            levels: columns
                .iter()
                .map(|(_, k)| match k {
                    ColumnKind::Categorical { levels } => Some(levels.clone()),
                    ColumnKind::Numeric => None,
                })
                .collect(),
        })
    }

    /// Runs the model once over `rows` (raw values in the artifact's
    /// column order; a categorical column's level index): a regression's
    /// value per row, or a classifier's probabilities (`classes` per row).
    /// A missing number is sent as NaN, a missing or unseen level as "".
    pub fn run(&self, rows: &[&[f64]]) -> Result<Vec<f64>, OnnxError> {
        // In chunks of `batch_rows` (`model.batch_rows`): what is fastest
        // depends on the model (BENCHMARKS.md).
        let mut out = Vec::with_capacity(rows.len() * self.classes.max(1));
        for chunk in rows.chunks(self.batch_rows) {
            out.extend(self.run_with_labels(chunk)?.0);
        }
        Ok(out)
    }

    /// Also reads the label output named by [`Session::with_label`]: the
    /// class each row is given, as text (an integer label as the data
    /// writes numbers).
    pub fn with_label(mut self, label: Option<String>) -> Session {
        self.label = label;
        self
    }

    /// [`Session::run`], and the labels when [`Session::with_label`] named
    /// an output.
    #[allow(clippy::type_complexity)]
    pub fn run_with_labels(
        &self,
        rows: &[&[f64]],
    ) -> Result<(Vec<f64>, Option<Vec<String>>), OnnxError> {
        let n = rows.len();
        if n == 0 {
            return Ok((Vec::new(), None));
        }
        let mut values: Vec<DynValue> = Vec::with_capacity(self.input_names.len());
        let fail =
            |e: ort::Error| OnnxError(format!("preparing the model's input: {}", ort_text(&e)));
        match &self.inputs {
            Inputs::Tensor { element, .. } => {
                let w = rows[0].len();
                let flat = rows.iter().flat_map(|r| r.iter().copied());
                values.push(numeric_tensor(*element, vec![n, w], flat).map_err(fail)?);
            }
            Inputs::Columns { elements } => {
                for (j, element) in elements.iter().enumerate() {
                    let column = rows.iter().map(|r| r[j]);
                    let v = match (element, &self.levels[j]) {
                        (Element::String, Some(levels)) => {
                            // ort takes owned text ('static elements).
                            let level = |v: f64| -> String {
                                match v >= 0.0 && v.fract() == 0.0 {
                                    true => levels.get(v as usize).cloned().unwrap_or_default(),
                                    false => String::new(),
                                }
                            };
                            let text: Vec<String> = column.map(level).collect();
                            Tensor::from_string_array(([n, 1], &text[..]))
                                .map(Into::into)
                                .map_err(fail)?
                        }
                        (e, _) => numeric_tensor(*e, vec![n, 1], column).map_err(fail)?,
                    };
                    values.push(v);
                }
            }
        }
        let inputs: Vec<(&str, DynValue)> = self
            .input_names
            .iter()
            .map(String::as_str)
            .zip(values)
            .collect();
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = session
            .run(inputs)
            .map_err(|e| OnnxError(format!("ONNX Runtime failed on a batch: {}", ort_text(&e))))?;
        let value = &out[self.output.as_str()];
        let flat: Vec<f64> = match value.try_extract_tensor::<f32>() {
            Ok((_, v)) => v.iter().map(|&x| f64::from(x)).collect(),
            Err(_) => value
                .try_extract_tensor::<f64>()
                .map(|(_, v)| v.to_vec())
                .map_err(|e| {
                    OnnxError(format!(
                        "reading output {}: {}",
                        quoted(&self.output),
                        ort_text(&e)
                    ))
                })?,
        };
        let want = n * self.classes.max(1);
        if flat.len() != want {
            return err(format!(
                "output {} has {} values for {n} rows, expected {want}",
                quoted(&self.output),
                flat.len()
            ));
        }
        let labels = match &self.label {
            None => None,
            Some(name) => {
                let v = &out[name.as_str()];
                let labels: Vec<String> = match v.try_extract_tensor::<i64>() {
                    Ok((_, l)) => l
                        .iter()
                        .map(|&c| crate::core::table::number_as_level(c as f64))
                        .collect(),
                    Err(_) => v.try_extract_strings().map(|(_, l)| l).map_err(|e| {
                        OnnxError(format!("reading output {}: {}", quoted(name), ort_text(&e)))
                    })?,
                };
                if labels.len() != n {
                    return err(format!(
                        "output {} has {} labels for {n} rows",
                        quoted(name),
                        labels.len()
                    ));
                }
                Some(labels)
            }
        };
        Ok((flat, labels))
    }

    /// Probability columns of a classifier (0: a regression).
    pub fn classes(&self) -> usize {
        self.classes
    }
}

impl OnnxModel {
    /// The ONNX file's path: [`OnnxModel::file`] taken from the folder of
    /// the artifact at `artifact` when relative.
    pub fn path(&self, artifact: &Path) -> PathBuf {
        let file = Path::new(&self.file);
        match artifact.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_path_buf(),
        }
    }

    /// Everything a load relies on before opening the file: a bounded,
    /// printable name, a sha256, inputs as many as the columns.
    pub fn check(&self, columns: &[(String, ColumnKind)]) -> Result<(), String> {
        let printable = |s: &str| {
            !s.is_empty() && s.len() <= 4096 && !s.chars().any(crate::core::text::needs_escape)
        };
        if !printable(&self.file) || !printable(&self.output) {
            return Err("model.file and model.output need 1 to 4096 printable characters".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("model.sha256 needs 64 hex digits".into());
        }
        match &self.inputs {
            Inputs::Tensor { name, element } => {
                if !printable(name) || *element == Element::String {
                    return Err("model.inputs: one tensor needs a printable name and float or double elements".into());
                }
                if columns.iter().any(|(_, k)| *k != ColumnKind::Numeric) {
                    return Err("model.inputs: one tensor takes numeric columns only".into());
                }
            }
            Inputs::Columns { elements } => {
                let fits = elements.len() == columns.len()
                    && elements.iter().zip(columns).all(|(e, (_, k))| {
                        (*e == Element::String) == matches!(k, ColumnKind::Categorical { .. })
                    });
                if !fits {
                    return Err("model.inputs: one input per feature column, text for a categorical one, numbers for a numeric one".into());
                }
            }
        }
        Ok(())
    }
}

/// A numeric input tensor of `element`s from `values` (bounded by
/// [`MAX_ABS_ONNX_INPUT`] upstream; NaN stays NaN: missing).
fn numeric_tensor(
    element: Element,
    shape: Vec<usize>,
    values: impl Iterator<Item = f64>,
) -> ort::Result<DynValue> {
    match element {
        Element::Double => {
            Tensor::from_array((shape, values.collect::<Vec<f64>>())).map(Into::into)
        }
        _ => Tensor::from_array((shape, values.map(|v| v as f32).collect::<Vec<f32>>()))
            .map(Into::into),
    }
}

/// The element a model input of type `ty` takes for a column of `kind`.
fn element_of(ty: &ValueType) -> Option<Element> {
    match ty.tensor_type()? {
        TensorElementType::Float32 => Some(Element::Float),
        TensorElementType::Float64 => Some(Element::Double),
        TensorElementType::String => Some(Element::String),
        _ => None,
    }
}

/// How the session's inputs take a row of `columns`, or which input does
/// not fit and what was expected.
fn inputs_of(
    s: &ort::session::Session,
    shown: &str,
    columns: &[(String, ColumnKind)],
) -> Result<Inputs, OnnxError> {
    let inputs = s.inputs();
    let dims = |ty: &ValueType| ty.tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
    let fits_rows = |d: &[i64], w: i64| d.len() == 2 && (d[1] == w || d[1] == -1);
    // A batch of any number of rows: the first dimension dynamic.
    if let Some(i) = inputs
        .iter()
        .find(|i| dims(i.dtype()).first().is_some_and(|d| *d != -1))
    {
        return err(format!(
            "{shown}: input {} takes a fixed number of rows ({}): export it with a dynamic \
             first dimension (skl2onnx does; torch.onnx.export with dynamic_axes={{name: {{0: \
             \"rows\"}}}})",
            quoted(i.name()),
            i.dtype()
        ));
    }
    if let [only] = inputs {
        if columns.len() != 1 || only.name() != columns[0].0 {
            let d = dims(only.dtype());
            let element = element_of(only.dtype()).filter(|e| *e != Element::String);
            let Some(element) = element.filter(|_| fits_rows(&d, columns.len() as i64)) else {
                return err(format!(
                    "{shown}: input {} is {}, expected a float or double tensor [rows, {}] of the \
                     feature columns {}",
                    quoted(only.name()),
                    only.dtype(),
                    columns.len(),
                    crate::core::table::names_of(columns.iter().map(|(n, _)| n.as_str()))
                ));
            };
            if let Some((name, _)) = columns.iter().find(|(_, k)| *k != ColumnKind::Numeric) {
                return err(format!(
                    "{shown}: input {} is one numeric tensor, but column {} is categorical: \
                     export the model with one input per column (a string input for it), or \
                     leave the column out of the data",
                    quoted(only.name()),
                    quoted(name)
                ));
            }
            return Ok(Inputs::Tensor {
                name: only.name().to_owned(),
                element,
            });
        }
    }
    // One input per column, by name.
    let mut elements = Vec::with_capacity(columns.len());
    for (name, kind) in columns {
        let Some(i) = inputs.iter().find(|i| i.name() == name) else {
            return err(format!(
                "{shown}: no input for column {}: the model's inputs are {}; it needs one tensor \
                 [rows, {}] of every feature column or one input per column, named as the column",
                quoted(name),
                describe(inputs.iter().map(|i| (i.name(), i.dtype()))),
                columns.len()
            ));
        };
        let want = match kind {
            ColumnKind::Numeric => "a float or double tensor [rows, 1]",
            ColumnKind::Categorical { .. } => "a string tensor [rows, 1]",
        };
        let e = element_of(i.dtype())
            .filter(|e| (*e == Element::String) == matches!(kind, ColumnKind::Categorical { .. }));
        match e {
            Some(e) if fits_rows(&dims(i.dtype()), 1) => elements.push(e),
            found => {
                // Level codes that are all numbers read as a numeric column.
                let hint = match (element_of(i.dtype()), kind, found) {
                    (Some(Element::String), ColumnKind::Numeric, _) => {
                        " (its values are all numbers: declare it categorical with --categorical or data.categorical)"
                    }
                    _ => "",
                };
                return err(format!(
                    "{shown}: input {} is {}, expected {want}{hint}",
                    quoted(name),
                    i.dtype()
                ));
            }
        }
    }
    if let Some(extra) = inputs
        .iter()
        .find(|i| !columns.iter().any(|(n, _)| n == i.name()))
    {
        return err(format!(
            "{shown}: input {} is not a feature column of the data",
            quoted(extra.name())
        ));
    }
    Ok(Inputs::Columns { elements })
}

/// "name (type), ..." of inputs or outputs, bounded.
fn describe<'a>(items: impl Iterator<Item = (&'a str, &'a ValueType)>) -> String {
    let all: Vec<String> = items
        .take(20)
        .map(|(n, t)| format!("{} ({t})", quoted(n)))
        .collect();
    crate::core::text::bounded_text(&all.join(", "), 1000)
}

/// Whether the file at `path` is a whole 64-bit little-endian ELF shared
/// object: its header, and the section header table it points at, within
/// the file (a truncated copy is refused before dlopen maps it).
fn whole_elf(path: &Path) -> Result<(), String> {
    use std::io::Read as _;
    let mut header = [0u8; 64];
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    f.read_exact(&mut header)
        .map_err(|_| "not a shared library (shorter than an ELF header)".to_owned())?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF shared library".into());
    }
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
    let u16_at = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
    let sections_end = u64_at(0x28).saturating_add(u16_at(0x3A).saturating_mul(u16_at(0x3C)));
    if sections_end > len {
        return Err(format!(
            "the file is cut short ({len} bytes; its section table ends at byte {sections_end})"
        ));
    }
    Ok(())
}

/// An artifact's ONNX session once opened (none for the built-in models,
/// and until [`super::tabular::TabularModel::open_onnx`]). Shared by every
/// copy of the model; two models compare equal whatever their sessions
/// (the artifact is the model).
#[derive(Clone, Default)]
pub struct Opened(Option<std::sync::Arc<Session>>);

impl Opened {
    pub fn new(session: Session) -> Opened {
        Opened(Some(std::sync::Arc::new(session)))
    }

    pub fn get(&self) -> Option<&Session> {
        self.0.as_deref()
    }
}

impl PartialEq for Opened {
    fn eq(&self, _: &Opened) -> bool {
        true
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Opened"
        } else {
            "NotOpened"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(inputs: Inputs) -> OnnxModel {
        OnnxModel {
            file: "m.onnx".into(),
            sha256: "ab".repeat(32),
            inputs,
            output: "variable".into(),
            classes: None,
        }
    }

    #[test]
    fn a_relative_file_is_taken_from_the_artifacts_folder() {
        let m = model(Inputs::Columns { elements: vec![] });
        assert_eq!(m.path(Path::new("/a/b/x.json")), Path::new("/a/b/m.onnx"));
        let abs = OnnxModel {
            file: "/models/m.onnx".into(),
            ..m
        };
        assert_eq!(
            abs.path(Path::new("/a/b/x.json")),
            Path::new("/models/m.onnx")
        );
    }

    #[test]
    fn the_artifacts_onnx_section_is_checked_against_the_columns() {
        let num = ("x".to_owned(), ColumnKind::Numeric);
        let cat = (
            "c".to_owned(),
            ColumnKind::Categorical {
                levels: vec!["a".into()],
            },
        );
        let tensor = model(Inputs::Tensor {
            name: "X".into(),
            element: Element::Float,
        });
        assert!(tensor.check(std::slice::from_ref(&num)).is_ok());
        assert!(
            tensor.check(&[num.clone(), cat.clone()]).is_err(),
            "one tensor: numbers only"
        );
        let columns = model(Inputs::Columns {
            elements: vec![Element::Double, Element::String],
        });
        assert!(columns.check(&[num.clone(), cat.clone()]).is_ok());
        assert!(
            columns.check(&[cat.clone(), num.clone()]).is_err(),
            "text for the level"
        );
        assert!(
            columns.check(std::slice::from_ref(&num)).is_err(),
            "one per column"
        );
        let bad_sha = OnnxModel {
            sha256: "AB".repeat(31),
            ..tensor.clone()
        };
        assert!(bad_sha.check(std::slice::from_ref(&num)).is_err());
        let bad_name = OnnxModel {
            output: "a\u{7}".into(),
            ..tensor
        };
        assert!(bad_name.check(&[num]).is_err());
    }

    #[test]
    fn inputs_are_described_in_words() {
        let t = Inputs::Tensor {
            name: "X".into(),
            element: Element::Double,
        };
        assert_eq!(t.describe(), "one double tensor \"X\"");
        assert_eq!(
            Inputs::Columns { elements: vec![] }.describe(),
            "one input per column"
        );
    }

    #[test]
    fn a_cut_short_or_foreign_file_is_not_taken_for_a_library() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("a.txt");
        std::fs::write(&text, [b'x'; 100]).unwrap();
        assert!(whole_elf(&text).unwrap_err().contains("not a 64-bit"));
        let short = dir.path().join("b");
        std::fs::write(&short, b"\x7fELF").unwrap();
        assert!(whole_elf(&short).unwrap_err().contains("shorter"));
        // A header whose section table lies past the end of the file.
        let mut header = vec![0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        header[0x28..0x30].copy_from_slice(&10_000u64.to_le_bytes());
        header[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        header[0x3C..0x3E].copy_from_slice(&10u16.to_le_bytes());
        let cut = dir.path().join("c.so");
        std::fs::write(&cut, &header).unwrap();
        assert!(whole_elf(&cut).unwrap_err().contains("cut short"));
        // This test binary itself is a whole ELF file.
        assert!(whole_elf(&std::env::current_exe().unwrap()).is_ok());
    }
}
