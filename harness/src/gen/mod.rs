//! The generator: random 1D CNNs and their inputs, as proptest strategies.
//!
//! Strategies (in `raw`) draw raw choices; `fit` then turns them into a valid [`ModelDesc`] by
//! following the activation shape and adjusting what does not fit (a kernel too long for the
//! remaining length, a group that does not divide the channels). Drawing raw choices keeps the
//! strategies simple and lets proptest shrink any of them without ever producing an invalid
//! model, except for the negative cases it is asked for (about 3%), whose last layer is
//! invalid in a named way. Rare classes (L = 1, C = L, kernels longer than the input, output
//! length 1, ceil_mode windows starting in the right padding) are drawn on purpose. Case `i` of base seed `S` runs the strategy on a [`TestRunner`] seeded from `(S, i)`,
//! so it is the same bit for bit everywhere.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};

use crate::model::ModelDesc;
use crate::onnx::emit::INPUT;

mod fit;
mod raw;
use crate::seed::{self, Draw};
use crate::tensor::{Named, Tensor};

/// Knobs of the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenConfig {
    /// Most layers in the main stack (heads and residual bodies count once).
    pub max_layers: usize,
    /// Opset of emitted models; `None` draws one per model from `opsets`.
    pub opset: Option<i64>,
    /// Opsets drawn from when `opset` is `None` (inclusive; `None`:
    /// [`crate::onnx::emit::DEFAULT_OPSETS`]).
    #[serde(default)]
    pub opsets: Option<(i64, i64)>,
    /// Element type of the models (`None`: float32).
    #[serde(default)]
    pub dtype: Option<crate::tensor::DType>,
    /// A share of the models ([`MIXED_FLOAT16_SHARE`]) in float16, the others in float32
    /// (`dtype` is then ignored).
    #[serde(default)]
    pub mixed_float16: bool,
    /// Which cases a run makes of each index: the float case, its quantized form (QDQ
    /// activations, integer weights; made after generation by `crate::conformance`, which
    /// calibrates with the oracle), or both.
    #[serde(default, skip_serializing_if = "QuantizedCases::is_none")]
    pub quantized: QuantizedCases,
    /// The operator form of every quantized model (`None`: drawn per case, see
    /// `crate::conformance::quantize`); a case id's suffix names its form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantized_operators: Option<crate::model::QuantOperators>,
}

/// Which cases a run makes of each generated index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuantizedCases {
    /// The float case alone.
    #[default]
    None,
    /// The float case and, at a share of the indices ([`QUANTIZED_SHARE`]), its quantized form
    /// beside it: a run's float cases stay those of a run without quantized ones, so a float
    /// case's seed and index reproduce it whatever else runs.
    Beside,
    /// The quantized form alone (the float case where its model has none).
    Only,
}

impl QuantizedCases {
    fn is_none(&self) -> bool {
        *self == QuantizedCases::None
    }
}

/// Share of the indices of a [`QuantizedCases::Beside`] run that get a quantized case beside
/// the float one.
pub const QUANTIZED_SHARE: f64 = 0.125;

impl GenConfig {
    /// The same knobs making one form of each case: its quantized form when `quantized`, else
    /// its float one (how a case is made again from its origin).
    pub fn one_form(&self, quantized: bool) -> GenConfig {
        GenConfig {
            quantized: if quantized {
                QuantizedCases::Only
            } else {
                QuantizedCases::None
            },
            ..self.clone()
        }
    }

    /// Whether some cases are quantized.
    pub fn draws_quantized(&self) -> bool {
        self.quantized != QuantizedCases::None
    }

    /// The opsets models are drawn from, inclusive.
    pub fn opsets_drawn(&self) -> (i64, i64) {
        self.opset
            .map(|o| (o, o))
            .or(self.opsets)
            .unwrap_or(crate::onnx::emit::DEFAULT_OPSETS)
    }

    /// Whether some models are drawn in float16.
    pub fn draws_float16(&self) -> bool {
        self.mixed_float16 || self.dtype == Some(crate::tensor::DType::Float16)
    }
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            max_layers: 8,
            opset: None,
            opsets: None,
            dtype: None,
            mixed_float16: false,
            quantized: QuantizedCases::None,
            quantized_operators: None,
        }
    }
}

/// How input values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputDist {
    /// Standard normal.
    Normal,
    /// Uniform in [-100, 100).
    WideUniform,
    /// Integers in -4..=4, exact in every precision.
    SmallInt,
    /// Normal scaled by 1e-3.
    NearZero,
    /// Normal scaled by 1e3.
    Large,
}

impl InputDist {
    /// One value; `narrow` (float16 models, whose largest value is 65504) draws the wide and
    /// large distributions 10 and 100 times smaller, so that most cases stay in range.
    fn draw(self, rng: &mut impl Draw, narrow: bool) -> f32 {
        let wide = if narrow { 0.1 } else { 1.0 };
        (match self {
            InputDist::Normal => rng.normal(),
            InputDist::WideUniform => rng.uniform(-100.0 * wide, 100.0 * wide),
            InputDist::SmallInt => rng.int(-4, 4) as f64,
            InputDist::NearZero => rng.normal() * 1e-3,
            InputDist::Large => rng.normal() * 1e3 * wide * wide,
        }) as f32
    }
}

/// One generated case: a model and how to draw its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Stable id, `s{seed}-i{index}`.
    pub id: String,
    /// Base seed of the run.
    pub base_seed: u64,
    /// Index within the run.
    pub index: u64,
    /// Seed of this case, derived from (base seed, index).
    pub seed: u64,
    /// The model.
    pub model: ModelDesc,
    /// Input distribution.
    pub input: InputDist,
}

impl Case {
    /// The input tensors, drawn from the case seed.
    pub fn inputs(&self) -> Vec<Named> {
        let mut rng = seed::rng(self.seed, "inputs");
        let shape = self.model.input_shape();
        let narrow = self.model.dtype == crate::tensor::DType::Float16;
        let data = (0..shape.iter().product::<usize>())
            .map(|_| self.input.draw(&mut rng, narrow))
            .collect();
        let mut tensor = Tensor::f32(&shape, data).expect("shape matches data");
        if self.model.dtype != crate::tensor::DType::Float {
            tensor = Tensor::from_f64(self.model.dtype, &tensor.to_f64())
                .expect("models have a float element type");
        }
        vec![Named {
            name: INPUT.into(),
            tensor,
        }]
    }
}

/// Generates case `index` of base seed `base`.
pub fn generate(base: u64, index: u64, cfg: &GenConfig) -> Case {
    let (model, input) = tree(base, index, cfg).current();
    case_from(base, index, model, input)
}

/// The proptest value tree of case `index`: its current value is the case, and
/// `simplify`/`complicate` walk proptest's shrinking of it (used by reduction).
pub fn tree(
    base: u64,
    index: u64,
    cfg: &GenConfig,
) -> Box<dyn ValueTree<Value = (ModelDesc, InputDist)>> {
    let seed = seed::case_seed(base, index);
    let mut runner = TestRunner::new_with_rng(Config::default(), seed::rng(seed, "model"));
    let strategy = (model_strategy(cfg.clone()), input_strategy()).boxed();
    strategy
        .new_tree(&mut runner)
        .expect("the generator's strategies never reject")
}

/// The case of `index` with a given model and input distribution (its seed still derives
/// from the base seed and index, so inputs stay those of the case).
pub fn case_from(base: u64, index: u64, model: ModelDesc, input: InputDist) -> Case {
    Case {
        id: format!("s{base}-i{index}"),
        base_seed: base,
        index,
        seed: seed::case_seed(base, index),
        model,
        input,
    }
}

/// Strategy over input distributions.
pub fn input_strategy() -> impl Strategy<Value = InputDist> {
    prop_oneof![
        4 => Just(InputDist::Normal),
        2 => Just(InputDist::WideUniform),
        2 => Just(InputDist::SmallInt),
        1 => Just(InputDist::NearZero),
        1 => Just(InputDist::Large),
    ]
}

/// Strategy over model descriptions: valid ones, and about 3% negative cases.
pub fn model_strategy(cfg: GenConfig) -> BoxedStrategy<ModelDesc> {
    use crate::tensor::DType;
    let opsets = cfg.opsets_drawn();
    let layers = cfg.max_layers.max(1);
    let model = move |raw: &raw::RawModel, dtype: DType| {
        let mut model = fit::fit_model(raw, layers);
        model.dtype = dtype;
        if dtype == DType::Float16 {
            // Small-integer weights (-2..=2) grow activations layer after layer, past float16's
            // 65504 in deep stacks; scaled weights keep them in range.
            model.weights = crate::model::WeightDist::Scaled;
        }
        model
    };
    if cfg.mixed_float16 {
        // The share is drawn after the model's raw choices, so those are the same as without.
        return (
            raw::model_strategy(opsets),
            prop::bool::weighted(MIXED_FLOAT16_SHARE),
        )
            .prop_map(move |(raw, half)| {
                model(&raw, if half { DType::Float16 } else { DType::Float })
            })
            .boxed();
    }
    let dtype = cfg.dtype.unwrap_or(DType::Float);
    raw::model_strategy(opsets)
        .prop_map(move |raw| model(&raw, dtype))
        .boxed()
}

/// Share of float16 models with [`GenConfig::mixed_float16`].
pub const MIXED_FLOAT16_SHARE: f64 = 0.25;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_the_same_case() {
        let cfg = GenConfig::default();
        for i in 0..50 {
            let a = generate(3, i, &cfg);
            assert_eq!(a, generate(3, i, &cfg));
            assert_eq!(a.inputs(), generate(3, i, &cfg).inputs());
        }
        assert_ne!(generate(3, 1, &cfg).model, generate(4, 1, &cfg).model);
    }

    #[test]
    fn every_generated_model_is_valid_or_a_marked_negative_case() {
        let cfg = GenConfig::default();
        let mut negatives = 0;
        for i in 0..2000 {
            let case = generate(0, i, &cfg);
            let shapes = case.model.shapes();
            match case.model.negative {
                None => {
                    shapes.unwrap_or_else(|e| panic!("{}: {e}: {:?}", case.id, case.model));
                }
                Some(kind) => {
                    negatives += 1;
                    let err = shapes.expect_err(&case.id);
                    assert_eq!(
                        err.layer + 1,
                        case.model.depth(),
                        "{}: {kind:?} {err}",
                        case.id
                    );
                }
            }
            assert!(case.model.depth() <= 6 * cfg.max_layers + 4, "{}", case.id);
        }
        // About 3% negative cases.
        assert!(
            (20..=110).contains(&negatives),
            "{negatives} negative cases in 2000"
        );
    }

    #[test]
    fn the_generator_reaches_every_catalogue_class() {
        let cfg = GenConfig::default();
        let required =
            crate::model::required_classes(crate::onnx::emit::DEFAULT_OPSETS, false, false);
        let low = classes_under(&cfg, required, 5);
        assert!(low.is_empty(), "classes under 5 cases in 3000: {low:?}");
    }

    /// The `required` classes that fewer than `n` of the first 3000 cases of seed 0 have.
    fn classes_under(cfg: &GenConfig, required: Vec<String>, n: usize) -> Vec<(String, usize)> {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..3000 {
            for class in generate(0, i, cfg).model.classes() {
                *seen.entry(class).or_default() += 1;
            }
        }
        required
            .into_iter()
            .map(|c| {
                let k = seen.get(&c).copied().unwrap_or(0);
                (c, k)
            })
            .filter(|(_, k)| *k < n)
            .collect()
    }

    #[test]
    fn every_opset_and_float16_reach_the_catalogue_with_the_wide_options() {
        let cfg = GenConfig {
            opsets: Some(crate::onnx::emit::SUPPORTED_OPSETS),
            mixed_float16: true,
            ..GenConfig::default()
        };
        let required =
            crate::model::required_classes(crate::onnx::emit::SUPPORTED_OPSETS, true, false);
        assert!(
            required.contains(&"opset=1".to_string()) && required.contains(&"opset=28".to_string())
        );
        let low = classes_under(&cfg, required, 5);
        assert!(low.is_empty(), "classes under 5 cases in 3000: {low:?}");
    }

    #[test]
    fn a_fixed_opset_is_kept_and_the_default_draws_every_opset_from_11_to_21() {
        let fixed = GenConfig {
            opset: Some(13),
            ..GenConfig::default()
        };
        assert!((0..50).all(|i| generate(0, i, &fixed).model.opset == 13));
        let drawn: std::collections::BTreeSet<i64> = (0..500)
            .map(|i| generate(0, i, &GenConfig::default()).model.opset)
            .collect();
        assert_eq!(drawn, (11..=21).collect());
    }

    #[test]
    fn mixed_runs_draw_a_share_of_float16_models_with_the_same_raw_choices() {
        let mixed = GenConfig {
            mixed_float16: true,
            ..GenConfig::default()
        };
        let (mut half, n) = (0, 400);
        for i in 0..n {
            let a = generate(0, i, &mixed).model;
            let b = generate(0, i, &GenConfig::default()).model;
            if a.dtype == crate::tensor::DType::Float16 {
                half += 1;
            }
            // The same layers, opset and shape: only the type (and for float16 the weights'
            // distribution) differs.
            assert_eq!(
                (&a.layers, a.opset, a.input_shape()),
                (&b.layers, b.opset, b.input_shape())
            );
        }
        assert!((60..=140).contains(&half), "{half} of {n} in float16");
    }

    #[test]
    fn float16_models_have_float16_inputs_weights_and_outputs() {
        use crate::tensor::DType;
        use tract_onnx::pb::tensor_proto::DataType;
        let cfg = GenConfig {
            dtype: Some(DType::Float16),
            ..GenConfig::default()
        };
        let mut evaluated = 0;
        for i in 0..100 {
            let case = generate(0, i, &cfg);
            assert!(case.model.classes().iter().any(|c| c == "dtype=float16"));
            assert!(case
                .inputs()
                .iter()
                .all(|n| n.tensor.dtype() == DType::Float16));
            let model = crate::onnx::emit::emit(&case.model).unwrap();
            let graph = model.graph.as_ref().unwrap();
            let float16 = DataType::Float16 as i32;
            for t in &graph.initializer {
                let float = t.data_type == DataType::Float as i32;
                assert!(!float, "s0-i{i}: float32 initializer {}", t.name);
            }
            let declared = crate::onnx::proto::declared_type(&graph.output[0])
                .unwrap()
                .0;
            assert_eq!(declared, float16);
            if case.model.negative.is_none()
                && crate::oracle::evaluate(&model, &case.inputs()).is_ok()
            {
                evaluated += 1;
            }
        }
        assert!(evaluated >= 80, "{evaluated} of 100 evaluated");
    }

    #[test]
    fn a_wider_range_draws_every_opset_in_it_and_the_oracle_evaluates_each_model() {
        let cfg = GenConfig {
            opsets: Some((1, 28)),
            ..GenConfig::default()
        };
        let mut drawn = std::collections::BTreeSet::new();
        for i in 0..600 {
            let case = generate(0, i, &cfg);
            drawn.insert(case.model.opset);
            if case.model.negative.is_some() {
                continue;
            }
            let model = crate::onnx::emit::emit(&case.model).unwrap();
            if let Err(e) = crate::oracle::evaluate(&model, &case.inputs()) {
                // Only the oracle's limits and undefined results may refuse a valid model.
                assert!(
                    matches!(
                        e,
                        crate::oracle::OracleError::TooLarge(_)
                            | crate::oracle::OracleError::Undefined(_)
                    ),
                    "s0-i{i} at opset {}: {e}",
                    case.model.opset
                );
            }
        }
        assert_eq!(drawn, (1..=28).collect());
    }
}
