//! What deleting images gives back. Deleting an image frees only the layers no other image
//! holds; which those are depends on what else is deleted. With each image's layers known the
//! count is exact; without them it is a lower bound from sizes and shared sizes.

use rustc_hash::FxHashMap;

use crate::{Image, Layer};

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
///
/// Most layers belong to one image (its own, above the bases it shares): such a layer is
/// freed exactly when its image goes, so it needs no count of holders. Each image keeps the
/// sum of those [`Own`] bytes, and only the layers that may be shared get an entry in `info`:
/// a node of a million layers, of which a few thousand are shared, counts in a table that
/// stays in cache.
pub(crate) struct LayerTable {
    info: Vec<LayerInfo>,
    /// Image `i`'s shared layers are `layers[starts[i]..starts[i + 1]]`, each at most once.
    starts: Vec<u32>,
    layers: Vec<u32>,
    own: Vec<Own>,
}

/// The layers of one image that no other image lists.
#[derive(Clone, Copy, Default)]
struct Own {
    bytes: u64,
    /// Whether there is any (a layer of 0 bytes is still a layer deleting the image frees).
    any: bool,
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
            Freed::Layers(table) => {
                table.own[index].any
                    || table
                        .layers_of(index)
                        .iter()
                        .any(|&l| table.info[l as usize].holders == 0)
            }
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

/// One layer that may be shared; together, so that counting a layer touches one place in
/// memory.
#[derive(Clone, Copy)]
struct LayerInfo {
    /// [`Layer::key`], or a hash of the digest's text when it has none.
    key: u64,
    size: u64,
    /// Images not deleted that hold the layer.
    holders: u32,
    /// The image that last counted the layer while the table was built: a layer listed twice
    /// in one image counts once.
    counted_by: u32,
}

impl LayerTable {
    /// `None` unless every image lists its layers.
    ///
    /// A first pass sets a bit per layer key, and a second bit when a key comes again; a
    /// layer whose second bit stays clear is certainly listed once, by one image: one of its
    /// [`Own`] layers, added to its bytes without a lookup. Only the others, shared ones and a
    /// few whose bit another key also hit, go through the index and into `info`.
    fn new(images: &[Image]) -> Option<LayerTable> {
        let total: usize = images
            .iter()
            .map(|i| i.layers.as_ref().map(Vec::len))
            .sum::<Option<usize>>()?;
        let mut seen = KeyBits::new(total);
        let mut again = KeyBits::new(total);
        let mut repeated = 0usize;
        for key in images
            .iter()
            .flat_map(|i| i.layers.iter().flatten())
            .filter_map(Layer::key)
        {
            if seen.set(key) {
                repeated += usize::from(!again.set(key));
            }
        }
        drop(seen);
        let mut index = DigestIndex::with_capacity(repeated * 2);
        let mut table = LayerTable {
            info: Vec::with_capacity(repeated * 2),
            starts: Vec::with_capacity(images.len() + 1),
            // Untouched capacity costs address space, not memory.
            layers: Vec::with_capacity(total),
            own: Vec::with_capacity(images.len()),
        };
        for (i, image) in images.iter().enumerate() {
            table.starts.push(table.layers.len() as u32);
            let mut own = Own::default();
            for layer in image.layers.iter().flatten() {
                let key = layer.key();
                if key.is_some_and(|key| !again.get(key)) {
                    own.bytes = own.bytes.saturating_add(layer.size_bytes());
                    own.any = true;
                    continue;
                }
                let next = table.info.len() as u32;
                let l = index.get_or_insert(key, layer, next, &table.info);
                if l == next {
                    table.info.push(LayerInfo {
                        key: key.unwrap_or(0),
                        size: layer.size_bytes(),
                        holders: 0,
                        counted_by: u32::MAX,
                    });
                }
                let info = &mut table.info[l as usize];
                if info.counted_by != i as u32 {
                    info.counted_by = i as u32;
                    info.holders += 1;
                    table.layers.push(l);
                }
            }
            table.own.push(own);
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
            self.info[l as usize].holders += 1;
        }
    }

    fn delete(&mut self, image: usize) -> u64 {
        let (start, end) = (self.starts[image] as usize, self.starts[image + 1] as usize);
        let mut freed = self.own[image].bytes;
        for &l in &self.layers[start..end] {
            let info = &mut self.info[l as usize];
            info.holders -= 1;
            if info.holders == 0 {
                freed = freed.saturating_add(info.size);
            }
        }
        freed
    }
}

/// Layer digests to indices: by [`Layer::key`] when the digest has one, else by its text. The
/// keyed table holds only indices (4 bytes each), with the keys in the layers' [`LayerInfo`],
/// which counting the layer reads anyway: a million layers stay cheap to look up.
struct DigestIndex<'a> {
    keyed: hashbrown::HashTable<u32>,
    other: FxHashMap<&'a str, u32>,
}

impl<'a> DigestIndex<'a> {
    fn with_capacity(n: usize) -> DigestIndex<'a> {
        DigestIndex {
            keyed: hashbrown::HashTable::with_capacity(n),
            other: FxHashMap::default(),
        }
    }

    /// The index of the layer (with its key, when it has one), `next` when it is new (and
    /// about to be pushed onto `info`).
    fn get_or_insert(
        &mut self,
        key: Option<u64>,
        layer: &'a Layer,
        next: u32,
        info: &[LayerInfo],
    ) -> u32 {
        match key {
            Some(key) => *self
                .keyed
                .entry(
                    mix(key),
                    |&l| info[l as usize].key == key,
                    |&l| mix(info[l as usize].key),
                )
                .or_insert(next)
                .get(),
            None => *self.other.entry(layer.digest()).or_insert(next),
        }
    }
}

/// One bit per layer key, in a table about eight times as large as the number of layers: two
/// keys share a bit rarely, and then only cost a lookup.
struct KeyBits {
    words: Vec<u64>,
    mask: usize,
}

impl KeyBits {
    fn new(layers: usize) -> KeyBits {
        let bits = (layers * 8).next_power_of_two().max(64);
        KeyBits {
            words: vec![0; bits / 64],
            mask: bits - 1,
        }
    }

    fn position(&self, key: u64) -> (usize, u64) {
        let bit = mix(key) as usize & self.mask;
        (bit / 64, 1 << (bit % 64))
    }

    /// Sets the key's bit; returns whether it was set already.
    fn set(&mut self, key: u64) -> bool {
        let (word, bit) = self.position(key);
        let was = self.words[word] & bit != 0;
        self.words[word] |= bit;
        was
    }

    fn get(&self, key: u64) -> bool {
        let (word, bit) = self.position(key);
        self.words[word] & bit != 0
    }
}

/// A digest's bits are already uniform; a hand-written one may not be: spread them (the
/// multiplier of FxHash).
fn mix(key: u64) -> u64 {
    key.wrapping_mul(0x517c_c1b7_2722_0a95).rotate_left(26)
}
