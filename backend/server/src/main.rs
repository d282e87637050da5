//! The `emsp` binary.

/// mimalloc instead of the system allocator: parsing partner feeds, the search index and GraphQL
/// answers allocate and free many small objects on every request and page, where glibc's malloc
/// spent a third of the CPU time of a full pull (free-list consolidation and fragmentation).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    emsp_server::cli::main()
}
