//! Size classes: object sizes up to 32 KiB are rounded up to one of 67
//! classes (Go's table), each carved from spans of a fixed number of pages.

/// Page size of the heap.
pub(crate) const PAGE_SHIFT: usize = 13;
/// 8 KiB.
pub(crate) const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// Largest object (header included) served by a size class.
pub(crate) const MAX_SMALL_SIZE: usize = 32 << 10;

/// Object sizes of the classes; class 0 means "large" (own span).
pub(crate) const CLASS_SIZES: [u32; 68] = [
    0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
    2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

/// Number of size classes, the large class 0 included.
pub(crate) const NUM_CLASSES: usize = CLASS_SIZES.len();
/// Each size class comes as a scan and a noscan span class.
pub(crate) const NUM_SPAN_CLASSES: usize = NUM_CLASSES * 2;

/// A size class and whether its objects are scanned: `class << 1 | noscan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanClass(pub(crate) u8);

impl SpanClass {
    pub(crate) const fn new(class: usize, noscan: bool) -> SpanClass {
        SpanClass(((class << 1) | noscan as usize) as u8)
    }
    pub(crate) const fn class(self) -> usize {
        (self.0 >> 1) as usize
    }
    pub(crate) const fn noscan(self) -> bool {
        self.0 & 1 == 1
    }
    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The class serving objects of `size` bytes (header included), or 0 when
/// the object is large. Evaluated at compile time for each `Gc<T>`.
pub(crate) const fn class_of(size: usize) -> usize {
    if size > MAX_SMALL_SIZE {
        return 0;
    }
    // Binary search over the sorted table.
    let (mut lo, mut hi) = (1, NUM_CLASSES - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if (CLASS_SIZES[mid] as usize) < size {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Pages per span of `class`: the fewest pages that waste at most 1/8 of the
/// span on the tail (and hold at least 8 objects where that is cheap).
pub(crate) const fn pages_of(class: usize) -> usize {
    let size = CLASS_SIZES[class] as usize;
    let mut pages = 1;
    loop {
        let bytes = pages * PAGE_SIZE;
        let waste = bytes % size;
        if waste * 8 <= bytes && (bytes / size >= 8 || pages >= 4) {
            return pages;
        }
        pages += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_fits_its_class() {
        for size in 1..=MAX_SMALL_SIZE {
            let c = class_of(size);
            assert!(c > 0);
            assert!(CLASS_SIZES[c] as usize >= size);
            assert!((CLASS_SIZES[c - 1] as usize) < size || c == 1);
        }
        assert_eq!(class_of(MAX_SMALL_SIZE + 1), 0);
    }

    #[test]
    fn spans_waste_little() {
        for (c, &size) in CLASS_SIZES.iter().enumerate().skip(1) {
            let p = pages_of(c);
            let bytes = p * PAGE_SIZE;
            assert!(bytes % size as usize * 8 <= bytes, "class {c}");
            assert!(p <= 16, "class {c} takes {p} pages");
        }
    }
}
