//! The memory store's records, kept in pages of same-sized slots rather than one heap
//! allocation each.
//!
//! A store that holds many sessions, each a small allocation made in the middle of request
//! handling, pins those allocations between the requests' own short-lived ones: freed
//! memory can no longer merge back, and every later allocation in the process searches a
//! fragmented heap. Measured with glibc's allocator, a million such sessions made the whole
//! server (routes without sessions too) 20-30% slower; in pages, it runs as fast as with an
//! empty store. Pages also make a record update in place when its size class does not
//! change, as a counter's does.

/// Bytes in one page. Pages are allocated as a size class needs them, so a store with few
/// sessions holds few pages.
const PAGE_BYTES: usize = 32 * 1024;

/// Slot sizes: each class wastes at most a third of a slot. A record larger than the last
/// class gets an allocation of its own.
const CLASSES: [usize; 13] = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];

/// Where one record's bytes are.
pub(super) enum Blob {
    /// In slot `index` of size class `class`, `len` bytes long.
    Slot { class: u8, len: u16, index: u32 },
    /// Too large for a slot.
    Heap(Box<[u8]>),
}

/// An empty record, which takes no space.
impl Default for Blob {
    fn default() -> Self {
        Blob::Heap(Box::default())
    }
}

/// The pages of one shard, by size class.
#[derive(Default)]
pub(super) struct Slab {
    classes: [Class; CLASSES.len()],
}

#[derive(Default)]
struct Class {
    pages: Vec<Box<[u8]>>,
    /// Slots freed since they were handed out, reused first.
    free: Vec<u32>,
    /// Slots handed out from the pages so far; those below it are in use or in `free`.
    next: u32,
}

impl Class {
    fn in_use(&self) -> usize {
        self.next as usize - self.free.len()
    }
}

impl Slab {
    /// Stores `bytes` and returns where: in a slot, or (too large for one) in the
    /// allocation `bytes` already is.
    pub(super) fn put(&mut self, bytes: Vec<u8>) -> Blob {
        let Some(class) = class_of(bytes.len()) else {
            return Blob::Heap(bytes.into_boxed_slice());
        };

        let index = self.take_slot(class);
        let blob = Blob::Slot {
            class: class as u8,
            // A class holds at most 1024 bytes.
            len: bytes.len() as u16,
            index,
        };
        self.slot_mut(class, index)[..bytes.len()].copy_from_slice(&bytes);
        blob
    }

    /// The bytes of `blob`.
    pub(super) fn get<'a>(&'a self, blob: &'a Blob) -> &'a [u8] {
        match blob {
            Blob::Slot { class, len, index } => {
                &self.slot(usize::from(*class), *index)[..usize::from(*len)]
            }
            Blob::Heap(bytes) => bytes,
        }
    }

    /// Replaces the bytes of `blob` with `bytes`, in place when they fit the same class.
    pub(super) fn replace(&mut self, blob: &mut Blob, bytes: Vec<u8>) {
        if let Blob::Slot { class, len, index } = blob {
            let (class, index) = (usize::from(*class), *index);
            if class_of(bytes.len()) == Some(class) {
                *len = bytes.len() as u16;
                self.slot_mut(class, index)[..bytes.len()].copy_from_slice(&bytes);
                return;
            }
        }

        let old = std::mem::replace(blob, self.put(bytes));
        self.free(old);
    }

    /// Gives back the space of `blob`. A class whose slots are all free gives back its
    /// pages; until then freed slots are kept for reuse, so a class holds the pages of
    /// the most records of its size it ever held at once.
    pub(super) fn free(&mut self, blob: Blob) {
        let Blob::Slot { class, index, .. } = blob else {
            return;
        };

        let class = &mut self.classes[usize::from(class)];
        class.free.push(index);
        if class.in_use() == 0 {
            *class = Class::default();
        }
    }

    /// How many records are in slots: for tests that check nothing leaks.
    #[cfg(test)]
    pub(super) fn in_use(&self) -> usize {
        self.classes.iter().map(Class::in_use).sum()
    }

    fn take_slot(&mut self, class: usize) -> u32 {
        let per_page = PAGE_BYTES / CLASSES[class];
        let slots = &mut self.classes[class];
        if let Some(index) = slots.free.pop() {
            return index;
        }

        if slots.next as usize == slots.pages.len() * per_page {
            slots.pages.push(vec![0; PAGE_BYTES].into_boxed_slice());
        }
        slots.next += 1;
        slots.next - 1
    }

    fn slot(&self, class: usize, index: u32) -> &[u8] {
        let (page, bytes) = locate(class, index);
        &self.classes[class].pages[page][bytes]
    }

    fn slot_mut(&mut self, class: usize, index: u32) -> &mut [u8] {
        let (page, bytes) = locate(class, index);
        &mut self.classes[class].pages[page][bytes]
    }
}

/// The size class for `len` bytes: the smallest slot they fit, or `None` when too large.
fn class_of(len: usize) -> Option<usize> {
    CLASSES.iter().position(|size| len <= *size)
}

/// The page of slot `index` of `class`, and the slot's bytes within it.
fn locate(class: usize, index: u32) -> (usize, std::ops::Range<usize>) {
    let size = CLASSES[class];
    let per_page = PAGE_BYTES / size;
    let (page, slot) = (index as usize / per_page, index as usize % per_page);
    (page, slot * size..(slot + 1) * size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn a_blob_is_no_larger_than_a_boxed_slice() {
        assert_eq!(
            std::mem::size_of::<Blob>(),
            std::mem::size_of::<Box<[u8]>>()
        );
    }

    #[test]
    fn records_of_every_size_read_back() {
        let mut slab = Slab::default();
        let lens = [0, 1, 16, 17, 100, 1024, 1025, 5000];
        let blobs: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(i, len)| slab.put(bytes(*len, i as u8)))
            .collect();
        for (i, (blob, len)) in blobs.iter().zip(lens).enumerate() {
            assert_eq!(slab.get(blob), bytes(len, i as u8));
        }
    }

    #[test]
    fn replace_keeps_the_slot_within_a_class_and_moves_across_classes() {
        let mut slab = Slab::default();
        let mut blob = slab.put(bytes(30, 1));
        slab.replace(&mut blob, bytes(31, 2));
        assert!(matches!(
            blob,
            Blob::Slot {
                class: 2,
                index: 0,
                ..
            }
        ));
        assert_eq!(slab.get(&blob), bytes(31, 2));

        for len in [10, 200, 4000, 20] {
            slab.replace(&mut blob, bytes(len, 3));
            assert_eq!(slab.get(&blob), bytes(len, 3));
            assert_eq!(slab.in_use(), usize::from(len <= 1024));
        }
    }

    #[test]
    fn many_records_span_pages_and_free_slots_are_reused() {
        let mut slab = Slab::default();
        let blobs: Vec<_> = (0..5000).map(|i| slab.put(bytes(40, i as u8))).collect();
        assert_eq!(
            slab.classes[3].pages.len(),
            5000usize.div_ceil(PAGE_BYTES / 48)
        );
        for (i, blob) in blobs.iter().enumerate() {
            assert_eq!(slab.get(blob), bytes(40, i as u8));
        }

        let mut blobs = blobs.into_iter();
        for blob in blobs.by_ref().take(100) {
            slab.free(blob);
        }
        let pages = slab.classes[3].pages.len();
        let again: Vec<_> = (0..100).map(|_| slab.put(bytes(40, 9))).collect();
        assert_eq!(slab.classes[3].pages.len(), pages, "freed slots are reused");

        for blob in blobs.chain(again) {
            slab.free(blob);
        }
        assert_eq!(slab.in_use(), 0);
        assert!(
            slab.classes[3].pages.is_empty(),
            "an empty class gives its pages back"
        );
    }
}
