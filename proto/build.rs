//! Compiles the `.proto` files with protox (pure Rust, no system `protoc`) and generates the tonic code.

use std::path::PathBuf;

const PROTOS: &[&str] = &["billing/v1/billing.proto", "executor/v1/executor.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let file_descriptors = protox::compile(PROTOS, ["proto"])?;

    // Each server's reflection lists only its own package: one descriptor set per package, imports included.
    for (proto, name) in [(PROTOS[0], "billing"), (PROTOS[1], "executor")] {
        let descriptors = protox::compile([proto], ["proto"])?;
        std::fs::write(
            out_dir.join(format!("{name}.bin")),
            prost::Message::encode_to_vec(&descriptors),
        )?;
    }

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(file_descriptors)?;

    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    Ok(())
}
