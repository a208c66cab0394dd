//! What the two host bridges (`mass::host`, `light::host`) share: reading `[B]` parameter tensors
//! to the host and stacking per-sample results back into `[B, N]` tensors.

use burn::tensor::{Device, Tensor, TensorData};

/// The values of `[B]` tensors, one host column each.
pub fn host_columns(params: &[Tensor<1>]) -> Vec<Vec<f64>> {
    params
        .iter()
        .map(|t| t.clone().into_data().iter::<f64>().collect())
        .collect()
}

/// Values `j * n .. (j + 1) * n` of every sample's row, stacked into a `[B, n]` tensor.
pub fn stack_part(rows: &[Vec<f32>], j: usize, n: usize, device: &Device) -> Tensor<2> {
    let mut v = Vec::with_capacity(rows.len() * n);
    for row in rows {
        v.extend_from_slice(&row[j * n..(j + 1) * n]);
    }
    Tensor::<2>::from_data(TensorData::new(v, [rows.len(), n]), device)
}
