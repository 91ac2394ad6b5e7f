//! Compiles proto/orchestrator_service.proto into the crate's message and service types. protox
//! parses it in Rust (it ships Google's well-known types), so a machine without protoc builds.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/orchestrator_service.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
