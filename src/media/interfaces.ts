/**
 * rtpengine's logical interfaces (its `--interface=NAME/ADDR`). The call legs live on `public`; the
 * recorder fork on `recorder`, an internal address (loopback by default), so that the user's plain Opus
 * is never offered from an address the outside can reach (DESIGN §4.8). An rtpengine we do not spawn must
 * define both names; one that does not falls back to its first interface (and logs a warning).
 */
export const PUBLIC_INTERFACE = 'public';
export const RECORDER_INTERFACE = 'recorder';
