//! Fuzz targets for duplex-ws.

/// Placeholder until the frame decoder lands.
pub fn frame(data: &[u8]) {
    let _ = data;
}
