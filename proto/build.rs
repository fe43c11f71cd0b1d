//! Compiles the `.proto` files with protox (pure Rust, no system `protoc`) and generates the tonic code.

use std::path::PathBuf;

const PROTOS: &[&str] = &["billing/v1/billing.proto", "executor/v1/executor.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let file_descriptors = protox::compile(PROTOS, ["proto"])?;

    // The reflection services need the encoded descriptor set of every file, imports included.
    let encoded = prost::Message::encode_to_vec(&file_descriptors);
    std::fs::write(out_dir.join("descriptor.bin"), encoded)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptors)?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    Ok(())
}
