//! The commands that write one model or case: `inject-fault`, `lower1d`, `emit`.

use std::process::ExitCode;

use anyhow::Context;

use harness::gen::{GenConfig, QuantizedCases};
use harness::onnx::proto;

use crate::args::{opset_choice, ModelType, QuantizedOperators};

pub fn inject_fault(
    kind: &str,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let mut model = proto::decode_model(&bytes).with_context(|| input.display().to_string())?;
    harness::fault::inject(kind, &mut model)?;
    harness::fsutil::write_atomically(output, &proto::encode_model(&model))?;
    Ok(ExitCode::SUCCESS)
}

pub fn lower1d(
    nc1l: bool,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use harness::convert::UnitAxis;
    let bytes =
        std::fs::read(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let mut model = proto::decode_model(&bytes).with_context(|| input.display().to_string())?;
    let unit = if nc1l {
        UnitAxis::BeforeLength
    } else {
        UnitAxis::Last
    };
    harness::convert::lower(&mut model, unit)
        .with_context(|| format!("{}: cannot lower", input.display()))?;
    harness::fsutil::write_atomically(output, &proto::encode_model(&model))?;
    println!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

pub fn emit(
    seed: u64,
    index: u64,
    (opset, opsets): (Option<i64>, Option<&str>),
    (dtype, quantized, operators): (ModelType, bool, Option<QuantizedOperators>),
    dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let range = opset_choice(opset, opsets)?;
    let cfg = GenConfig {
        opset,
        opsets: range,
        dtype: (dtype == ModelType::Float16).then(|| dtype.dtype()),
        mixed_float16: dtype == ModelType::Mixed,
        // The quantized form alone, or the float case alone: one case is written.
        quantized: if quantized || operators.is_some() {
            QuantizedCases::Only
        } else {
            QuantizedCases::None
        },
        quantized_operators: operators.map(Into::into),
        ..GenConfig::default()
    };
    let mut command = format!("harness emit --seed {seed} --index {index}");
    match (opset, range) {
        (Some(o), _) => command.push_str(&format!(" --opset {o}")),
        (None, Some((a, b))) => command.push_str(&format!(" --opsets {a}-{b}")),
        (None, None) => {}
    }
    match dtype {
        ModelType::Float32 => {}
        ModelType::Float16 => command.push_str(" --dtype float16"),
        ModelType::Mixed => command.push_str(" --dtype mixed"),
    }
    match operators {
        Some(form) => command.push_str(&format!(
            " --quantized-operators {}",
            clap::ValueEnum::to_possible_value(&form)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        )),
        None if quantized => command.push_str(" --quantized"),
        None => {}
    }
    command.push_str(" DIR");
    let case = harness::conformance::write_generated_case(seed, index, &cfg, dir, &command)?;
    println!("wrote {} ({})", dir.display(), case.id);
    Ok(ExitCode::SUCCESS)
}
