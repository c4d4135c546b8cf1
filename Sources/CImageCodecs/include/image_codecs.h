// Small C layer over libpng (classic API: it needs setjmp, which Swift cannot call), TurboJPEG 2.x
// and libexif. Everything decodes from and encodes to memory, so the Swift side owns file I/O
// (and writes atomically). Every failure returns nonzero with a one-line message in `err`.
#ifndef FACERESTORE_IMAGE_CODECS_H
#define FACERESTORE_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width;
    int height;
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (RGB order).
    int channels;
    /// 8 or 16 bits per sample; 16-bit samples are native-endian uint16.
    int depth;
    /// EXIF orientation tag (1–8); 1 when absent.
    int orientation;
    /// malloc'd, row-major interleaved; free with fr_free.
    unsigned char *pixels;
} fr_image;

/// Reads only the header: size, channels, depth. Returns 0 on success.
int fr_png_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);
int fr_jpeg_info(const unsigned char *data, size_t size, fr_image *out, char *err, size_t errlen);

/// Decodes a whole image, refusing more than `max_pixels` pixels before allocating.
/// PNG: palette and low-bit gray expanded to 8 bits, tRNS to an alpha channel, 16-bit kept.
/// JPEG: decoded to RGB (3 channels) or gray (1), orientation read from EXIF.
int fr_png_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_jpeg_decode(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);

/// Encodes interleaved samples (RGB order; 1–4 channels; depth 8 or 16) to a malloc'd buffer.
int fr_png_encode(const unsigned char *pixels, int width, int height, int channels, int depth, int level,
                  unsigned char **out, size_t *out_size, char *err, size_t errlen);
/// Encodes 8-bit gray (1) or RGB (3) at `quality` with 4:2:0 (`subsampling` 420) or 4:4:4 (444) chroma.
int fr_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality, int subsampling,
                   unsigned char **out, size_t *out_size, char *err, size_t errlen);

/// One 8-bit gray channel as `cv2.imread(path, IMREAD_GRAYSCALE)` (OpenCV 4.6) gives it: PNG through
/// libpng's rgb_to_gray (0.299, 0.587), JPEG as its decoded luma plane; orientation read from EXIF.
int fr_png_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);
int fr_jpeg_decode_gray(const unsigned char *data, size_t size, size_t max_pixels, fr_image *out, char *err, size_t errlen);

void fr_free(void *p);

#endif
