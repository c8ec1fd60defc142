//! An allocation limit for every target: one allocation over [`LIMIT`] aborts, and libFuzzer
//! keeps the input as a crash. libFuzzer's own `-malloc_limit_mb` sees allocations only through
//! a sanitizer's hooks, so without one (`-s none`, the default of `scripts/fuzz/run.sh`) an input
//! that makes the code reserve gigabytes it never touches would pass unnoticed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;

/// The largest single allocation (512 MiB, the run's default `-malloc_limit_mb`).
pub const LIMIT: usize = 512 << 20;

/// The system allocator with [`LIMIT`].
pub struct Limited;

fn refuse() -> ! {
    // No allocation here: a fixed message, then abort (an allocator must not unwind).
    let _ = std::io::stderr().write_all(b"==fuzz== ERROR: one allocation over the 512 MiB limit\n");
    std::process::abort()
}

// SAFETY: every call is forwarded to the system allocator unchanged, or aborts first.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            refuse();
        }
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            refuse();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            refuse();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;
