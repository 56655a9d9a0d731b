//! Reads an image as a layer store would, for bench/image.sh:
//! `image_read open|verify|tar IMAGE`. `open` finds the image's layers
//! and config; `verify` also reads every layer blob through the sha256
//! check; `tar` also decompresses each one and checks its DiffID.

use std::io::Read;
use std::process::ExitCode;

use slicebox::store::image::open_image;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, path] = &args[..] else {
        eprintln!("usage: image_read open|verify|tar IMAGE");
        return ExitCode::from(2);
    };
    match run(mode, path) {
        Ok(bytes) => {
            println!("{bytes}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("image_read: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The bytes read past the image's JSON.
fn run(mode: &str, path: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let image = open_image(path.as_ref(), None)?;
    let mut total = 0;
    for layer in &image.layers {
        total += match mode {
            "open" => 0,
            "verify" => std::io::copy(&mut layer.open_verified()?, &mut std::io::sink())?,
            "tar" => {
                let mut tar = layer.open_tar()?;
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0;
                loop {
                    match tar.read(&mut buf)? {
                        0 => break,
                        got => n += got as u64,
                    }
                }
                tar.finish()?;
                n
            }
            other => return Err(format!("unknown mode '{other}'").into()),
        };
    }
    Ok(total)
}
