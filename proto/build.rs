//! Compiles the gRPC contract with protox, so that a fresh machine needs no
//! protoc binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=radstudy");

    let descriptors = protox::compile(["radstudy/v1/worker.proto"], ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
