//! Zeroed buffers on 2 MiB pages (Linux's transparent huge pages), for the large ones.
//!
//! A sparse batch's products read and write the kernel rows its batch names (a
//! 10,000-word kernel is 20 MB): each row is on another 4 KiB page, and every page the
//! core has not mapped recently costs a page-table walk. On 2 MiB pages the core's TLB
//! holds the whole kernel. Most Linux distributions give huge pages only to memory that
//! asks for them (`madvise` in `/sys/kernel/mm/transparent_hugepage/enabled`), as NumPy
//! asks for its arrays of 4 MiB and more; these buffers ask too, before their first write,
//! so the kernel maps them on huge pages as they are written (no copy). Measured in
//! `docs/performance.md`.

/// One huge page, in bytes: only the whole, aligned ones inside a buffer are asked for
/// (a buffer needs 4 MiB to be sure of holding one).
const HUGE: usize = 2 << 20;

/// `len` zeros, asking Linux (only there) to back the buffer with huge pages: the whole,
/// aligned 2 MiB pages inside it, when the allocation is fresh memory not
/// yet written (as large zeroed allocations are). A hint: any refusal (another system, huge
/// pages turned off, memory reused from an earlier buffer) leaves ordinary pages.
pub fn zeroed(len: usize) -> Vec<f32> {
    let v = vec![0.0f32; len];
    advise(&v);
    v
}

/// Asks for huge pages under the whole 2 MiB pages inside `values` (`MADV_HUGEPAGE`).
fn advise(values: &[f32]) {
    #[cfg(target_os = "linux")]
    {
        let start = (values.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (values.as_ptr() as usize + size_of_val(values)) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside `values`, memory this process owns and maps;
            // the advice keeps every byte's value (it only changes which pages back the
            // memory) and reports failure through the return value, which is ignored.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = values;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_buffers_are_zeros_of_the_length_asked() {
        for len in [0, 5, (HUGE / 4) * 3 + 7] {
            let v = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x.to_bits() == 0));
        }
    }

    /// The mapping under a large buffer carries the huge-page advice (`hg` among its
    /// `VmFlags` in `/proc/self/smaps`), whether or not huge pages are free right now.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_buffer_asks_for_huge_pages() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            eprintln!("skipped: this kernel has no transparent huge pages");
            return;
        }
        let v = zeroed(3 * HUGE / size_of::<f32>());
        let inside = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        // A mapping's first line is `start-end perms …` (hex), its last `VmFlags: …`.
        let range = |line: &str| {
            let (a, z) = line.split_once(' ')?.0.split_once('-')?;
            Some(usize::from_str_radix(a, 16).ok()?..usize::from_str_radix(z, 16).ok()?)
        };
        let (mut here, mut flags) = (false, None);
        for line in smaps.lines() {
            match (range(line), line.strip_prefix("VmFlags:")) {
                (Some(r), _) => here = r.contains(&inside),
                (None, Some(f)) if here => flags = Some(f.to_string()),
                _ => {}
            }
        }
        let flags = flags.expect("the buffer's mapping in /proc/self/smaps");
        assert!(flags.split_whitespace().any(|f| f == "hg"), "VmFlags:{flags}");
    }
}
