//! What deleting images gives back. Deleting an image frees only the layers no other image
//! holds; which those are depends on what else is deleted. With each image's layers known the
//! count is exact; without them it is a lower bound from sizes and shared sizes.

use rustc_hash::FxHashMap;

use crate::Image;

/// Bytes freed by a growing set of deletions, one image at a time.
pub(crate) enum Freed {
    /// Every image lists its layers: a layer is freed when the last image holding it goes.
    Layers(LayerTable),
    /// Sizes only (`size_bytes`, `shared_bytes`): a lower bound, see [`Freed::delete`].
    Estimate {
        unique: u64,
        /// The largest `shared_bytes` of a deleted image.
        max_shared: u64,
        /// `shared_bytes` summed over the images not deleted.
        survivors_shared: u64,
        freed: u64,
    },
}

/// Layers by index: the images holding each, and each image's layers.
pub(crate) struct LayerTable {
    sizes: Vec<u64>,
    /// Images not deleted that hold the layer.
    holders: Vec<u32>,
    /// Image `i`'s layers are `layers[starts[i]..starts[i + 1]]`, each at most once.
    starts: Vec<u32>,
    layers: Vec<u32>,
}

impl Freed {
    /// Accounting over all the node's images (kept ones included: they hold layers too).
    pub(crate) fn new(images: &[Image]) -> Freed {
        match LayerTable::new(images) {
            Some(table) => Freed::Layers(table),
            None => Freed::Estimate {
                unique: 0,
                max_shared: 0,
                survivors_shared: images
                    .iter()
                    .fold(0u64, |sum, i| sum.saturating_add(i.shared_bytes)),
                freed: 0,
            },
        }
    }

    /// Deletes `images[index]`; returns the bytes this frees beyond the deletions before it.
    ///
    /// Without layers: the image's unique bytes, plus what the bound
    /// `Σ unique(D) + max(shared(D)) − Σ shared(survivors)` over the deleted set D gains. Of
    /// the shared layers D holds (at least `max(shared(D))` bytes), those a survivor also holds
    /// weigh at most the survivors' shared bytes; the rest only D held, so they are freed. When
    /// images built on each other are all deleted (a base and its children, none used), this
    /// counts the base they share, which `size − shared` alone never does.
    pub(crate) fn delete(&mut self, images: &[Image], index: usize) -> u64 {
        match self {
            Freed::Layers(table) => table.delete(index),
            Freed::Estimate {
                unique,
                max_shared,
                survivors_shared,
                freed,
            } => {
                let image = &images[index];
                *unique = unique.saturating_add(image.unique_bytes());
                *max_shared = (*max_shared).max(image.shared_bytes);
                *survivors_shared = survivors_shared.saturating_sub(image.shared_bytes);
                let now = unique.saturating_add(max_shared.saturating_sub(*survivors_shared));
                let gained = now.saturating_sub(*freed);
                *freed = now;
                gained
            }
        }
    }

    /// Whether deleting `images[index]` frees anything given everything deleted so far; always
    /// true without layers, where the bound cannot tell.
    pub(crate) fn frees_anything(&self, index: usize) -> bool {
        match self {
            Freed::Layers(table) => table
                .layers_of(index)
                .iter()
                .any(|&l| table.holders[l as usize] == 0),
            Freed::Estimate { .. } => true,
        }
    }

    /// Un-deletes an image that freed nothing (all its layers are still held), so the others'
    /// accounting stays as it was.
    pub(crate) fn restore(&mut self, index: usize) {
        if let Freed::Layers(table) = self {
            table.undelete(index);
        }
    }
}

impl LayerTable {
    /// `None` unless every image lists its layers.
    fn new(images: &[Image]) -> Option<LayerTable> {
        let total: usize = images
            .iter()
            .map(|i| i.layers.as_ref().map(Vec::len))
            .sum::<Option<usize>>()?;
        let mut index: FxHashMap<&str, u32> = FxHashMap::default();
        index.reserve(total / 2);
        let mut table = LayerTable {
            sizes: Vec::new(),
            holders: Vec::new(),
            starts: Vec::with_capacity(images.len() + 1),
            layers: Vec::with_capacity(total),
        };
        // The image that last counted a layer: a layer listed twice in one image counts once.
        let mut counted_by: Vec<u32> = Vec::new();
        for (i, image) in images.iter().enumerate() {
            table.starts.push(table.layers.len() as u32);
            for layer in image.layers.iter().flatten() {
                let next = table.sizes.len() as u32;
                let l = *index.entry(layer.digest.as_str()).or_insert(next);
                if l == next {
                    table.sizes.push(layer.size_bytes);
                    table.holders.push(0);
                    counted_by.push(u32::MAX);
                }
                if counted_by[l as usize] != i as u32 {
                    counted_by[l as usize] = i as u32;
                    table.holders[l as usize] += 1;
                    table.layers.push(l);
                }
            }
        }
        table.starts.push(table.layers.len() as u32);
        Some(table)
    }

    fn layers_of(&self, image: usize) -> &[u32] {
        &self.layers[self.starts[image] as usize..self.starts[image + 1] as usize]
    }

    fn undelete(&mut self, image: usize) {
        let (start, end) = (self.starts[image] as usize, self.starts[image + 1] as usize);
        for &l in &self.layers[start..end] {
            self.holders[l as usize] += 1;
        }
    }

    fn delete(&mut self, image: usize) -> u64 {
        let (start, end) = (self.starts[image] as usize, self.starts[image + 1] as usize);
        let mut freed = 0u64;
        for &l in &self.layers[start..end] {
            let holders = &mut self.holders[l as usize];
            *holders -= 1;
            if *holders == 0 {
                freed = freed.saturating_add(self.sizes[l as usize]);
            }
        }
        freed
    }
}

/// Sets each image's `shared_bytes` from its layers, as the engine's `/system/df` computes
/// it: the bytes of its layers that another image also holds. Images without layers are left
/// as they are; so is everything when some image lacks them.
pub fn shared_bytes_from_layers(images: &mut [Image]) {
    let Some(table) = LayerTable::new(images) else {
        return;
    };
    for (i, image) in images.iter_mut().enumerate() {
        image.shared_bytes = table
            .layers_of(i)
            .iter()
            .filter(|&&l| table.holders[l as usize] > 1)
            .map(|&l| table.sizes[l as usize])
            .sum();
    }
}
