//! The corpus architectures: the reference CNN1D and Keras Conv1D models and realistic 1D CNNs at realistic
//! sizes, each with a static and a symbolic-length variant.
//!
//! Every model here is built by code from a fixed seed, so `harness corpus-build` rewrites the
//! committed corpus byte for byte (a test checks it).

use anyhow::Result;

use super::net::{ConvSpec, Net};
use super::Built;
use crate::onnx::proto::Dim;

fn f(n: usize) -> Dim {
    Dim::Fixed(n)
}

fn s(name: &str) -> Dim {
    Dim::Symbol(name.into())
}

/// Whether a model declares its sizes or leaves batch and length symbolic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Every dimension fixed.
    Static,
    /// Batch (and length, where the head allows it) as `dim_param`s.
    Symbolic,
}

impl Variant {
    fn suffix(self) -> &'static str {
        match self {
            Variant::Static => "",
            Variant::Symbolic => "_dyn",
        }
    }
    fn batch(self) -> Dim {
        match self {
            Variant::Static => f(1),
            Variant::Symbolic => s("N"),
        }
    }
    fn length(self, n: usize) -> Dim {
        match self {
            Variant::Static => f(n),
            Variant::Symbolic => s("L"),
        }
    }
}

/// The reference PyTorch `CNN1D`: Conv1d(1, 32, 3), ReLU, MaxPool1d(2), Linear, input `[1, 1, 100]`.
pub fn cnn1d(v: Variant) -> Result<Built> {
    let mut n = Net::new("CNN1D", 1, 17);
    let x = n.input("input", &[v.batch(), f(1), f(100)]);
    let c = n.conv(&x, 1, 32, ConvSpec::k(3))?;
    let r = n.unary("Relu", &c);
    let p = n.pool("MaxPool", &r, 2, 2, [0, 0], false);
    // PyTorch exports `x.view(-1, 32 * 49)` as a Reshape with a constant shape.
    let shape = n.ints("shape", &[-1, 32 * 49])?;
    let flat = n.op("Reshape", &[&p, &shape], vec![]);
    let y = n.dense(&flat, 32 * 49, 10)?;
    let model = n.finish(&[(&y, vec![v.batch(), f(10)])]);
    Ok(Built::new(
        &format!("cnn1d{}", v.suffix()),
        "the reference PyTorch CNN1D (Conv1d 1->32 k3, ReLU, MaxPool1d 2, Linear -> 10)",
        "reference model; its Linear reads 32*48, which does not fit an input of 100 (Conv k3 gives \
         98, MaxPool 2 gives 49): this case keeps the layers and input and uses 32*49",
        model,
        vec![(
            "input",
            if v == Variant::Static {
                vec![1, 1, 100]
            } else {
                vec![3, 1, 100]
            },
        )],
    ))
}

/// The reference Keras `Conv1D` model as tf2onnx exports it: data stays `[N, L, C]` and every conv
/// and pool is wrapped in Transposes; Dense becomes MatMul + Add.
pub fn keras_conv1d(v: Variant) -> Result<Built> {
    let mut n = Net::new("keras_conv1d", 2, 13);
    let batch = match v {
        Variant::Static => f(1),
        Variant::Symbolic => s("unk__batch"),
    };
    let x = n.input("input_1", &[batch.clone(), f(100), f(1)]);
    let t = n.transpose(&x, &[0, 2, 1]);
    let c = n.conv(&t, 1, 32, ConvSpec::k(3))?;
    let back = n.transpose(&c, &[0, 2, 1]);
    let r = n.unary("Relu", &back);
    let t = n.transpose(&r, &[0, 2, 1]);
    let p = n.pool("MaxPool", &t, 2, 2, [0, 0], false);
    let back = n.transpose(&p, &[0, 2, 1]);
    let shape = n.ints("shape", &[-1, 49 * 32])?;
    let flat = n.op("Reshape", &[&back, &shape], vec![]);
    let w = n.weight("dense_kernel", &[49 * 32, 10], 49 * 32, 1.0)?;
    let b = n.uniform("dense_bias", &[10], -0.1, 0.1)?;
    let m = n.binary("MatMul", &flat, &w);
    let logits = n.binary("Add", &m, &b);
    let y = n.softmax(&logits);
    let model = n.finish(&[(&y, vec![batch, f(10)])]);
    Ok(Built::new(
        &format!("keras_conv1d_nlc{}", v.suffix()),
        "the reference Keras Conv1D model in [N, L, C] layout with the Transposes of a \
         TensorFlow export (Conv1D 32 k3 relu, MaxPooling1D 2, Flatten, Dense 10 softmax)",
        "reference model; graph written in tf2onnx's shape (opset 13, MatMul + Add for Dense)",
        model,
        vec![(
            "input_1",
            if v == Variant::Static {
                vec![1, 100, 1]
            } else {
                vec![2, 100, 1]
            },
        )],
    ))
}

/// Conv, BatchNorm, Relu.
fn conv_bn_relu(n: &mut Net, x: &str, cin: usize, cout: usize, spec: ConvSpec) -> Result<String> {
    let c = n.conv(x, cin, cout, spec)?;
    let b = n.batch_norm(&c, cout)?;
    Ok(n.unary("Relu", &b))
}

/// GlobalAveragePool, Flatten, Gemm, and a Softmax when asked.
fn head(n: &mut Net, x: &str, features: usize, classes: usize, softmax: bool) -> Result<String> {
    let g = n.unary("GlobalAveragePool", x);
    let flat = n.flatten(&g);
    let y = n.dense(&flat, features, classes)?;
    Ok(if softmax { n.softmax(&y) } else { y })
}

/// M5 (Dai et al. 2017) raw-waveform classifier: an 80-tap stride-4 stem on 8 kHz audio.
pub fn m5(v: Variant) -> Result<Built> {
    let mut n = Net::new("M5", 3, 17);
    let x = n.input("waveform", &[v.batch(), f(1), v.length(8000)]);
    let mut h = conv_bn_relu(&mut n, &x, 1, 32, ConvSpec::k(80).stride(4))?;
    h = n.pool("MaxPool", &h, 4, 4, [0, 0], false);
    for (cin, cout) in [(32, 32), (32, 64), (64, 64)] {
        h = conv_bn_relu(&mut n, &h, cin, cout, ConvSpec::k(3))?;
        h = n.pool("MaxPool", &h, 4, 4, [0, 0], false);
    }
    let y = head(&mut n, &h, 64, 35, true)?;
    let model = n.finish(&[(&y, vec![v.batch(), f(35)])]);
    Ok(Built::new(
        &format!("m5{}", v.suffix()),
        "M5-style raw-audio classifier (35 speech commands): Conv k80 s4 stem, 4 conv/BN/pool \
         stages, global average pool, Linear, Softmax",
        "architecture of Dai et al., 'Very deep CNNs for raw waveforms' (M5), seeded weights",
        model,
        vec![(
            "waveform",
            if v == Variant::Static {
                vec![1, 1, 8000]
            } else {
                vec![2, 1, 16000]
            },
        )],
    ))
}

/// Temporal convolutional network: causal dilated residual blocks, dilations 1..32.
pub fn tcn(v: Variant) -> Result<Built> {
    let mut n = Net::new("TCN", 4, 17);
    let x = n.input("series", &[v.batch(), f(8), v.length(512)]);
    let mut h = x.clone();
    let mut cin = 8;
    for d in [1, 2, 4, 8, 16, 32] {
        let spec = ConvSpec::k(3).dilation(d).causal();
        let a = n.conv(&h, cin, 16, spec)?;
        let a = n.unary("Relu", &a);
        let b = n.conv(&a, 16, 16, spec)?;
        let b = n.unary("Relu", &b);
        let skip = if cin == 16 {
            h.clone()
        } else {
            n.conv(&h, cin, 16, ConvSpec::k(1))?
        };
        let sum = n.binary("Add", &b, &skip);
        h = n.unary("Relu", &sum);
        cin = 16;
    }
    let y = n.conv(&h, 16, 4, ConvSpec::k(1))?;
    let model = n.finish(&[(&y, vec![v.batch(), f(4), v.length(512)])]);
    Ok(Built::new(
        &format!("tcn{}", v.suffix()),
        "temporal convolutional network: six causal residual blocks (k3, dilations 1, 2, 4, 8, \
         16, 32, left-only pads), 1x1 projection where channels change, per-step 1x1 output",
        "architecture of Bai et al., 'An empirical evaluation of generic convolutional and \
         recurrent networks for sequence modeling' (TCN), seeded weights",
        model,
        vec![(
            "series",
            if v == Variant::Static {
                vec![1, 8, 512]
            } else {
                vec![2, 8, 300]
            },
        )],
    ))
}

/// WaveNet-style stack: gated (tanh x sigmoid) causal dilated convs, residual and skip paths.
pub fn wavenet(v: Variant) -> Result<Built> {
    let mut n = Net::new("WaveNet", 5, 17);
    let x = n.input("audio", &[v.batch(), f(1), v.length(1024)]);
    let mut h = n.conv(&x, 1, 16, ConvSpec::k(2).causal())?;
    let mut skips: Option<String> = None;
    for d in [1, 2, 4, 8, 16, 32, 64, 128] {
        let spec = ConvSpec::k(2).dilation(d).causal();
        let filter = n.conv(&h, 16, 16, spec)?;
        let filter = n.unary("Tanh", &filter);
        let gate = n.conv(&h, 16, 16, spec)?;
        let gate = n.unary("Sigmoid", &gate);
        let z = n.binary("Mul", &filter, &gate);
        let res = n.conv(&z, 16, 16, ConvSpec::k(1))?;
        h = n.binary("Add", &h, &res);
        let skip = n.conv(&z, 16, 32, ConvSpec::k(1))?;
        skips = Some(match skips {
            None => skip,
            Some(acc) => n.binary("Add", &acc, &skip),
        });
    }
    let out = n.unary("Relu", skips.as_deref().unwrap_or(&h));
    let out = n.conv(&out, 32, 32, ConvSpec::k(1))?;
    let out = n.unary("Relu", &out);
    let y = n.conv(&out, 32, 64, ConvSpec::k(1))?;
    let model = n.finish(&[(&y, vec![v.batch(), f(64), v.length(1024)])]);
    Ok(Built::new(
        &format!("wavenet{}", v.suffix()),
        "WaveNet-style gated residual stack: eight causal k2 layers with dilations 1..128, \
         tanh x sigmoid gates, residual and summed skip connections, 1x1 output head",
        "architecture of van den Oord et al., 'WaveNet' (one dilation cycle), seeded weights",
        model,
        vec![(
            "audio",
            if v == Variant::Static {
                vec![1, 1, 1024]
            } else {
                vec![1, 1, 700]
            },
        )],
    ))
}

/// ResNet-1D for 12-lead ECG: k15 s2 stem, three basic-block stages with stride-2 projections.
pub fn resnet1d_ecg(v: Variant) -> Result<Built> {
    let mut n = Net::new("ResNet1D", 6, 17);
    let x = n.input("ecg", &[v.batch(), f(12), v.length(2500)]);
    let h = conv_bn_relu(&mut n, &x, 12, 32, ConvSpec::k(15).stride(2).pads(7, 7))?;
    let mut h = n.pool("MaxPool", &h, 3, 2, [1, 1], false);
    let mut cin = 32;
    for (cout, stride) in [(32, 1), (64, 2), (128, 2)] {
        let a = conv_bn_relu(
            &mut n,
            &h,
            cin,
            cout,
            ConvSpec::k(7).stride(stride).pads(3, 3),
        )?;
        let b = n.conv(&a, cout, cout, ConvSpec::k(7).pads(3, 3).no_bias())?;
        let b = n.batch_norm(&b, cout)?;
        let short = if stride == 1 && cin == cout {
            h.clone()
        } else {
            let p = n.conv(&h, cin, cout, ConvSpec::k(1).stride(stride).no_bias())?;
            n.batch_norm(&p, cout)?
        };
        let sum = n.binary("Add", &b, &short);
        h = n.unary("Relu", &sum);
        cin = cout;
    }
    let y = head(&mut n, &h, 128, 5, false)?;
    let model = n.finish(&[(&y, vec![v.batch(), f(5)])]);
    Ok(Built::new(
        &format!("resnet1d_ecg{}", v.suffix()),
        "ResNet-1D for 12-lead ECG at 250 Hz (10 s): k15 s2 stem, max pool, three residual \
         stages (32, 64, 128 channels, k7, stride-2 1x1 projections), 5 rhythm classes",
        "in the style of Hannun et al. 2019 and Ribeiro et al. 2020 ECG ResNets, seeded weights",
        model,
        vec![(
            "ecg",
            if v == Variant::Static {
                vec![1, 12, 2500]
            } else {
                vec![1, 12, 3000]
            },
        )],
    ))
}

/// Depthwise-separable CNN for keyword spotting on MFCC frames.
pub fn ds_cnn_kws(v: Variant) -> Result<Built> {
    let mut n = Net::new("DS-CNN", 7, 17);
    let x = n.input("mfcc", &[v.batch(), f(10), v.length(49)]);
    let mut h = conv_bn_relu(&mut n, &x, 10, 64, ConvSpec::k(3).stride(2).pads(1, 1))?;
    for _ in 0..4 {
        h = conv_bn_relu(
            &mut n,
            &h,
            64,
            64,
            ConvSpec::k(3).same().group(64).no_bias(),
        )?;
        h = conv_bn_relu(&mut n, &h, 64, 64, ConvSpec::k(1).no_bias())?;
    }
    let y = head(&mut n, &h, 64, 12, true)?;
    let model = n.finish(&[(&y, vec![v.batch(), f(12)])]);
    Ok(Built::new(
        &format!("ds_cnn_kws{}", v.suffix()),
        "depthwise-separable keyword-spotting CNN on 10 MFCCs x 49 frames: stride-2 stem, four \
         depthwise k3 (group 64) + pointwise blocks, 12 keywords",
        "after Zhang et al., 'Hello Edge' DS-CNN, written in 1D over time; seeded weights",
        model,
        vec![(
            "mfcc",
            if v == Variant::Static {
                vec![1, 10, 49]
            } else {
                vec![2, 10, 98]
            },
        )],
    ))
}

/// 1D U-Net: two down stages, ConvTranspose upsampling, skip Concats.
pub fn unet1d(v: Variant) -> Result<Built> {
    let mut n = Net::new("UNet1D", 8, 17);
    let x = n.input("signal", &[v.batch(), f(2), v.length(256)]);
    let block = |n: &mut Net, x: &str, cin: usize, cout: usize| -> Result<String> {
        let a = n.conv(x, cin, cout, ConvSpec::k(3).same())?;
        let a = n.unary("Relu", &a);
        let b = n.conv(&a, cout, cout, ConvSpec::k(3).same())?;
        Ok(n.unary("Relu", &b))
    };
    let e1 = block(&mut n, &x, 2, 8)?;
    let d1 = n.pool("MaxPool", &e1, 2, 2, [0, 0], false);
    let e2 = block(&mut n, &d1, 8, 16)?;
    let d2 = n.pool("MaxPool", &e2, 2, 2, [0, 0], false);
    let mid = block(&mut n, &d2, 16, 32)?;
    let u2 = n.conv_transpose(&mid, 32, 16, 2, 2, [0, 0], 0)?;
    let c2 = n.concat(&[&u2, &e2], 1);
    let o2 = block(&mut n, &c2, 32, 16)?;
    let u1 = n.conv_transpose(&o2, 16, 8, 2, 2, [0, 0], 0)?;
    let c1 = n.concat(&[&u1, &e1], 1);
    let o1 = block(&mut n, &c1, 16, 8)?;
    let y = n.conv(&o1, 8, 1, ConvSpec::k(1))?;
    let model = n.finish(&[(&y, vec![v.batch(), f(1), v.length(256)])]);
    Ok(Built::new(
        &format!("unet1d{}", v.suffix()),
        "1D U-Net for signal denoising: two conv/pool stages, ConvTranspose k2 s2 upsampling, \
         channel Concat skips, 1x1 output",
        "after Ronneberger et al. U-Net, written in 1D; seeded weights",
        model,
        vec![(
            "signal",
            if v == Variant::Static {
                vec![1, 2, 256]
            } else {
                vec![1, 2, 128]
            },
        )],
    ))
}

/// CNN with squeeze-and-excitation blocks.
pub fn se_net(v: Variant) -> Result<Built> {
    let mut n = Net::new("SENet1D", 9, 17);
    let x = n.input("features", &[v.batch(), f(16), v.length(400)]);
    let mut h = x.clone();
    let mut cin = 16;
    for (i, cout) in [16usize, 32, 64].into_iter().enumerate() {
        let c = conv_bn_relu(&mut n, &h, cin, cout, ConvSpec::k(5).same())?;
        let squeeze = n.unary("GlobalAveragePool", &c);
        let z = n.conv(&squeeze, cout, cout / 4, ConvSpec::k(1))?;
        let z = n.unary("Relu", &z);
        let e = n.conv(&z, cout / 4, cout, ConvSpec::k(1))?;
        let e = n.unary("Sigmoid", &e);
        h = n.binary("Mul", &c, &e);
        if i < 2 {
            h = n.pool("MaxPool", &h, 2, 2, [0, 0], false);
        }
        cin = cout;
    }
    let y = head(&mut n, &h, 64, 4, false)?;
    let model = n.finish(&[(&y, vec![v.batch(), f(4)])]);
    Ok(Built::new(
        &format!("se_net{}", v.suffix()),
        "1D CNN with squeeze-and-excitation: three conv/BN/ReLU blocks (k5), each gated by \
         GlobalAveragePool, 1x1 conv (C/4), ReLU, 1x1 conv, Sigmoid, Mul",
        "after Hu et al., 'Squeeze-and-Excitation Networks', written in 1D; seeded weights",
        model,
        vec![(
            "features",
            if v == Variant::Static {
                vec![1, 16, 400]
            } else {
                vec![2, 16, 250]
            },
        )],
    ))
}

/// Every architecture in both variants.
pub fn all() -> Result<Vec<Built>> {
    type Make = fn(Variant) -> Result<Built>;
    let makers: [Make; 9] = [
        cnn1d,
        keras_conv1d,
        m5,
        tcn,
        wavenet,
        resnet1d_ecg,
        ds_cnn_kws,
        unet1d,
        se_net,
    ];
    let mut out = Vec::new();
    for make in makers {
        // The static models are the default set of `harness perf`.
        let mut fixed = make(Variant::Static)?;
        fixed.perf = true;
        out.push(fixed);
        out.push(make(Variant::Symbolic)?);
    }
    Ok(out)
}
