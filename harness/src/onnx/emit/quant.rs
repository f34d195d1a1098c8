//! Emission of quantized models in the QDQ form static quantization tools write: activations
//! through QuantizeLinear → DequantizeLinear ([`crate::model::Layer::QuantizeDequantize`]),
//! weights stored as int8 or uint8 and dequantized, biases as int32 at the scale
//! `input scale × weight scale` (so that a runtime can fuse the layer into an integer kernel).

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

use super::Builder;
use crate::model::{Quant, WeightQuant};
use crate::onnx::proto::{attr, tensor_to_proto};
use crate::tensor::Tensor;

/// `round(x)` with ties to even, saturated to `lo..=hi`: QuantizeLinear's rounding.
pub fn quantize_value(x: f64, scale: f64, zero_point: i32, (lo, hi): (i32, i32)) -> i32 {
    ((x / scale).round_ties_even() + f64::from(zero_point)).clamp(f64::from(lo), f64::from(hi))
        as i32
}

/// Scale and zero point of weights spanning `min..=max`, as quantization tools choose them:
/// int8 symmetric (zero point 0, `max |w| / 127`) or uint8 over the range.
fn weight_params(min: f64, max: f64, signed: bool) -> (f32, i32) {
    let q = Quant::for_range(min, max, signed, signed);
    (q.scale, q.zero_point)
}

/// An integer initializer of `shape`: int8 or uint8 (`signed`), from values already in range.
fn int8_tensor(shape: &[usize], values: Vec<i32>, signed: bool) -> Result<Tensor> {
    Ok(if signed {
        Tensor::I8(ArrayD::from_shape_vec(
            IxDyn(shape),
            values.into_iter().map(|v| v as i8).collect(),
        )?)
    } else {
        Tensor::U8(ArrayD::from_shape_vec(
            IxDyn(shape),
            values.into_iter().map(|v| v as u8).collect(),
        )?)
    })
}

impl Builder<'_> {
    fn push_init(&mut self, what: &str, tensor: &Tensor) -> String {
        let name = self.fresh(what);
        self.inits.push(tensor_to_proto(&name, tensor));
        name
    }

    /// QuantizeLinear then DequantizeLinear on `x` with the parameters of `q`.
    pub(super) fn quantize_dequantize(&mut self, q: &Quant, x: &str) -> Result<String> {
        let scale = self.push_init("qdq_scale", &Tensor::f32(&[], vec![q.scale])?);
        let zp = self.push_init("qdq_zp", &int8_tensor(&[], vec![q.zero_point], q.signed)?);
        let quantized = self.op("QuantizeLinear", &[x, &scale, &zp], vec![]);
        let y = self.op("DequantizeLinear", &[&quantized, &scale, &zp], vec![]);
        self.activation_scales.insert(y.clone(), q.scale);
        Ok(y)
    }

    /// A layer's weight initializer of `shape`; in a model with quantized weights, stored as
    /// integers along a DequantizeLinear, one scale per index of `channel_axis` (per-channel) or
    /// one for the tensor. Returns the weight's name and, when quantized, the scale of each
    /// index of `channel_axis`.
    pub(super) fn weight(
        &mut self,
        what: &str,
        shape: &[usize],
        data: Vec<f32>,
        channel_axis: usize,
    ) -> Result<(String, Option<Vec<f32>>)> {
        let Some(WeightQuant {
            per_channel,
            signed,
            ..
        }) = self.desc.quantized_weights
        else {
            return Ok((self.init(what, shape, data)?, None));
        };
        let w = ArrayD::from_shape_vec(IxDyn(shape), data)?;
        let channels = shape[channel_axis];
        let range = if signed { (-128, 127) } else { (0, 255) };
        let params: Vec<(f32, i32)> = if per_channel {
            (0..channels)
                .map(|c| {
                    let lane = w.index_axis(ndarray::Axis(channel_axis), c);
                    let (min, max) = lane.iter().fold((0.0f64, 0.0f64), |(lo, hi), &v| {
                        (lo.min(f64::from(v)), hi.max(f64::from(v)))
                    });
                    weight_params(min, max, signed)
                })
                .collect()
        } else {
            let (min, max) = w.iter().fold((0.0f64, 0.0f64), |(lo, hi), &v| {
                (lo.min(f64::from(v)), hi.max(f64::from(v)))
            });
            vec![weight_params(min, max, signed); 1]
        };
        let q: Vec<i32> = w
            .indexed_iter()
            .map(|(idx, &v)| {
                let (s, zp) = params[if per_channel { idx[channel_axis] } else { 0 }];
                quantize_value(f64::from(v), f64::from(s), zp, range)
            })
            .collect();
        let stored = self.push_init(&format!("{what}_q"), &int8_tensor(shape, q, signed)?);
        let (scales, zps): (Vec<f32>, Vec<i32>) = params.iter().copied().unzip();
        let param_shape: &[usize] = if per_channel { &[channels] } else { &[] };
        let scale = self.push_init(
            &format!("{what}_scale"),
            &Tensor::f32(param_shape, scales.clone())?,
        );
        let zp = self.push_init(
            &format!("{what}_zp"),
            &int8_tensor(param_shape, zps, signed)?,
        );
        let attrs = if per_channel {
            vec![attr::int("axis", channel_axis as i64)]
        } else {
            vec![]
        };
        let y = self.op("DequantizeLinear", &[&stored, &scale, &zp], attrs);
        let per_index = if per_channel {
            scales
        } else {
            vec![scales[0]; channels]
        };
        Ok((y, Some(per_index)))
    }

    /// A bias of `data` (one per output channel). When the weights were quantized (their
    /// scale per output channel is `weight_scales`) and the layer's input `x` is a quantized
    /// activation, stored as int32 at `scale(x) × weight scale` and dequantized, as quantization
    /// tools write it; otherwise a float initializer.
    pub(super) fn bias(
        &mut self,
        what: &str,
        data: Vec<f32>,
        x: &str,
        weight_scales: Option<&[f32]>,
    ) -> Result<String> {
        let (Some(ws), Some(&xs)) = (weight_scales, self.activation_scales.get(x)) else {
            return self.init(what, &[data.len()], data);
        };
        // The scale as the tools compute it: a float32 product.
        let scales: Vec<f32> = ws.iter().map(|&w| xs * w).collect();
        let uniform = scales.iter().all(|&s| s == scales[0]);
        let q: Vec<i32> = data
            .iter()
            .zip(&scales)
            .map(|(&b, &s)| {
                (f64::from(b) / f64::from(s))
                    .round_ties_even()
                    .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            })
            .collect();
        let n = q.len();
        let stored = self.push_init(
            &format!("{what}_q"),
            &Tensor::I32(ArrayD::from_shape_vec(IxDyn(&[n]), q)?),
        );
        // A per-channel scale needs DequantizeLinear's `axis` (opset 13); per-tensor weights
        // give one scale.
        let (scale, attrs) = if uniform {
            (Tensor::f32(&[], vec![scales[0]])?, vec![])
        } else {
            (Tensor::f32(&[n], scales)?, vec![attr::int("axis", 0)])
        };
        let scale = self.push_init(&format!("{what}_scale"), &scale);
        Ok(self.op("DequantizeLinear", &[&stored, &scale], attrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_rounds_half_to_even_and_saturates() {
        let r = (-128, 127);
        assert_eq!(quantize_value(0.5, 1.0, 0, r), 0);
        assert_eq!(quantize_value(1.5, 1.0, 0, r), 2);
        assert_eq!(quantize_value(2.5, 1.0, 0, r), 2);
        assert_eq!(quantize_value(-2.5, 1.0, 0, r), -2);
        assert_eq!(quantize_value(1000.0, 1.0, 0, r), 127);
        assert_eq!(quantize_value(-1000.0, 1.0, 3, r), -128);
        assert_eq!(quantize_value(3.0, 2.0, 128, (0, 255)), 130);
    }

    #[test]
    fn weight_parameters_cover_the_range_and_zero() {
        // int8: symmetric over the largest magnitude.
        assert_eq!(weight_params(-0.5, 1.27, true), (0.01, 0));
        // uint8: the range with 0 in it; 0.0 maps exactly onto the zero point.
        let (s, zp) = weight_params(-1.0, 1.55, false);
        assert!((f64::from(s) - 0.01).abs() < 1e-7, "{s}");
        assert_eq!(zp, 100);
        // All-positive weights still include 0 in the range.
        assert_eq!(weight_params(0.2, 2.55, false).1, 0);
        // Zero weights get a unit scale rather than a division by zero.
        assert_eq!(weight_params(0.0, 0.0, true), (1.0, 0));
    }
}
