//! Building the ONNX graph: nodes, initializers, value infos, and the layout of the
//! tensor flowing through it.

use std::collections::HashMap;

use crate::proto::{
    ATTRIBUTE_FLOAT, ATTRIBUTE_INT, ATTRIBUTE_INTS, ATTRIBUTE_STRINGS, AttributeProto, Dimension, FLOAT, GraphProto,
    INT64, NodeProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

/// The tensor the next layer reads: its name, its sample dimensions in kiln's
/// channels-last order, and whether it is stored channels-first (NCHW) in the graph.
///
/// ONNX's Conv and pooling operators are channels-first while kiln (and Keras) are
/// channels-last; a tensor stays in whichever layout the last operator left it, and is
/// transposed only when the next operator needs the other one. Two convolutions in a row
/// therefore share one NCHW region with no transpose between them.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The ONNX value name.
    pub name: String,
    /// Sample dimensions, channels last (`[h, w, c]`), batch excluded.
    pub dims: Vec<usize>,
    /// Stored as `[N, c, h, w]` rather than `[N, h, w, c]`.
    pub channels_first: bool,
}

/// A graph under construction.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub proto: GraphProto,
    /// Values already transposed, by (value, to channels-first): in a Functional model one
    /// output may feed several layers that need the other layout, and it is converted once.
    converted: HashMap<(String, bool), String>,
}

impl Graph {
    /// Appends a node writing `output`.
    pub fn node(&mut self, op: &str, name: &str, input: Vec<String>, output: &str, attribute: Vec<AttributeProto>) {
        self.proto.node.push(NodeProto {
            input,
            output: vec![output.to_string()],
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            attribute,
        });
    }

    /// Appends a node with several outputs (the recurrent operators').
    pub fn node_outputs(
        &mut self,
        op: &str,
        name: &str,
        input: Vec<String>,
        output: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        self.proto.node.push(NodeProto {
            input,
            output,
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            attribute,
        });
    }

    /// Adds a float initializer of `dims`.
    pub fn init_f32(&mut self, name: &str, dims: &[usize], values: Vec<f32>) {
        self.proto.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(FLOAT),
            float_data: values,
            int64_data: Vec::new(),
            name: Some(name.to_string()),
        });
    }

    /// Adds a 1-D int64 initializer (a shape operand).
    pub fn init_i64(&mut self, name: &str, values: Vec<i64>) {
        self.proto.initializer.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(INT64),
            float_data: Vec::new(),
            int64_data: values,
            name: Some(name.to_string()),
        });
    }

    /// `cur` in channels-last layout, transposing it back if needed (the transpose is
    /// named after `layer`, the first to need it).
    pub fn channels_last(&mut self, cur: Cursor, layer: &str) -> Cursor {
        if !cur.channels_first {
            return cur;
        }
        let rank = cur.dims.len() as i64;
        // [N, c, d1, …] → [N, d1, …, c]
        let perm: Vec<i64> = std::iter::once(0).chain(2..=rank).chain(std::iter::once(1)).collect();
        let name = self.transpose(cur.name, false, &format!("{layer}/to_channels_last"), &perm);
        Cursor { name, dims: cur.dims, channels_first: false }
    }

    /// `cur` in channels-first layout, transposing it if needed (the transpose is named
    /// after `layer`, the first to need it).
    pub fn channels_first(&mut self, cur: Cursor, layer: &str) -> Cursor {
        // A flat sample `[c]` is both layouts at once.
        if cur.channels_first || cur.dims.len() == 1 {
            return cur;
        }
        let rank = cur.dims.len() as i64;
        // [N, d1, …, c] → [N, c, d1, …]
        let perm: Vec<i64> = [0, rank].into_iter().chain(1..rank).collect();
        let name = self.transpose(cur.name, true, &format!("{layer}/to_channels_first"), &perm);
        Cursor { name, dims: cur.dims, channels_first: true }
    }

    /// The value `input` transposed by `perm` into the layout `to_first` names: a
    /// `Transpose` writing `out`, or the one an earlier consumer already added.
    fn transpose(&mut self, input: String, to_first: bool, out: &str, perm: &[i64]) -> String {
        let key = (input, to_first);
        if let Some(done) = self.converted.get(&key) {
            return done.clone();
        }
        self.node("Transpose", out, vec![key.0.clone()], out, vec![ints("perm", perm)]);
        self.converted.insert(key, out.to_string());
        out.to_string()
    }
}

/// An integer attribute.
pub(crate) fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.to_string()), i: Some(value), r#type: Some(ATTRIBUTE_INT), ..Default::default() }
}

/// An integer-list attribute.
pub(crate) fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        ints: values.to_vec(),
        r#type: Some(ATTRIBUTE_INTS),
        ..Default::default()
    }
}

/// A string-list attribute.
pub(crate) fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
        r#type: Some(ATTRIBUTE_STRINGS),
        ..Default::default()
    }
}

/// A float attribute.
pub(crate) fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: Some(name.to_string()), f: Some(value), r#type: Some(ATTRIBUTE_FLOAT), ..Default::default() }
}

/// A `float32 [N, d1, …]` value with a free batch dimension `N`.
pub(crate) fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    typed_value_info(name, dims, FLOAT)
}

/// A `[N, d1, …]` value of element type `elem_type` (`FLOAT`, `INT64`).
pub(crate) fn typed_value_info(name: &str, dims: &[usize], elem_type: i32) -> ValueInfoProto {
    let batch = Dimension { dim_value: None, dim_param: Some("N".into()) };
    let rest = dims.iter().map(|&d| Dimension { dim_value: Some(d as i64), dim_param: None });
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim: std::iter::once(batch).chain(rest).collect() }),
            }),
        }),
    }
}
