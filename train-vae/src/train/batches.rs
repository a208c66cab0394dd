//! Shuffled minibatches of galaxy images through burn's data loader (burn-dataset).
//!
//! The images stay in one shared buffer; the burn [`Dataset`] yields image indices, burn's
//! [`DataLoaderBuilder`] shuffles them with a seed and groups them in batches, and
//! [`ImageBatcher`] copies the pixels of a batch into a `[B, 1, 64, 64]` tensor on the device.
//! A loader is built per epoch with a seed derived from the run seed and the epoch number, so a
//! resumed run visits the images in exactly the order an uninterrupted run would.

use arclight_vae::dataset::GalaxySet;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::Arc;

/// A data set's images as a burn [`Dataset`] of indices `0..n`.
#[derive(Clone, Debug)]
pub struct ImageIndices {
    n: usize,
}

impl Dataset<usize> for ImageIndices {
    /// Panics if `index >= len()` (the trait's contract).
    fn get(&self, index: usize) -> Result<usize, DatasetError> {
        assert!(
            index < self.n,
            "image index {index} out of range 0..{}",
            self.n
        );
        Ok(index)
    }
    fn len(&self) -> usize {
        self.n
    }
}

/// Turns a list of image indices into a `[B, 1, S, S]` tensor.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    set: Arc<GalaxySet>,
}

impl ImageBatcher {
    pub fn new(set: Arc<GalaxySet>) -> Self {
        ImageBatcher { set }
    }
}

/// Copy images `indices` of `set` into a `[B, 1, S, S]` tensor on `device`.
pub fn images_tensor(set: &GalaxySet, indices: &[usize], device: &Device) -> Tensor<4> {
    let s = set.size;
    let mut pixels = Vec::with_capacity(indices.len() * s * s);
    for &i in indices {
        pixels.extend_from_slice(set.image(i));
    }
    Tensor::from_data(TensorData::new(pixels, [indices.len(), 1, s, s]), device)
}

impl Batcher<usize, Tensor<4>> for ImageBatcher {
    fn batch(&self, items: Vec<usize>, device: &Device) -> Tensor<4> {
        images_tensor(&self.set, &items, device)
    }
}

/// A shuffled loader over all images of `set` in batches of `batch_size` (the last batch may be
/// smaller), shuffled with `seed`, batches created on `device`.
pub fn shuffled_loader(
    set: Arc<GalaxySet>,
    batch_size: usize,
    seed: u64,
    device: &Device,
) -> Arc<dyn DataLoader<Tensor<4>>> {
    let n = set.n;
    DataLoaderBuilder::new(ImageBatcher::new(set))
        .batch_size(batch_size)
        .shuffle(seed)
        .set_device(device.clone())
        .build(ImageIndices { n })
}

/// Index ranges `[start, end)` covering `0..n` in order, `batch` at a time (for evaluation).
pub fn chunks(n: usize, batch: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(batch.max(1))
        .map(move |s| (s, (s + batch.max(1)).min(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_visits_every_image_once_in_a_seeded_order() {
        let mut set = GalaxySet::new(2);
        for i in 0..7 {
            set.push(&[i as f32; 4], i, 0.1, &format!("test image {i}"));
        }
        let set = Arc::new(set);
        let device = Device::flex();
        let order = |seed| {
            let loader = shuffled_loader(set.clone(), 3, seed, &device);
            let mut seen = Vec::new();
            for batch in loader.iter() {
                let t = batch.unwrap();
                let v: Vec<f32> = t.into_data().try_to_vec().unwrap();
                seen.extend(v.chunks(4).map(|c| c[0] as i64));
            }
            seen
        };
        let a = order(5);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        assert_eq!(a, order(5));
        assert_eq!(
            chunks(7, 3).collect::<Vec<_>>(),
            vec![(0, 3), (3, 6), (6, 7)]
        );
    }
}
