//! Compiles proto/orchestrator_service.proto (the sidecar protocol) and
//! proto/durable_emu_worker.proto (durable-emu's own batch extension for its worker) into the
//! crate's message and service types. protox parses them in Rust (it ships Google's well-known
//! types), so a machine without protoc builds.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/orchestrator_service.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    // The contract as data too, so tests can compare it with the official SDKs' own copies.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("orchestrator_service.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    // Apart, so the sidecar contract above stays exactly the official one.
    let extension = "proto/durable_emu_worker.proto";
    println!("cargo:rerun-if-changed={extension}");
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile([extension], ["proto"])?)?;
    Ok(())
}
