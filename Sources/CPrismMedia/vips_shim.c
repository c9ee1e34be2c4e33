// libvips half of the PrismMedia C shim: variadic libvips calls wrapped as fixed-argument
// functions; option choices (strip, no upsizing, no cache) are made by the Swift caller or noted here.
#include "prism_media_shim.h"

int prism_vips_startup(const char *argv0) {
    if (VIPS_INIT(argv0 ? argv0 : "prism")) return -1;
    // A gateway sees bytes from strangers: refuse every loader libvips itself marks untrusted
    // (ImageMagick, rsvg, FITS, Matlab, OpenSlide, ...). pdfload is marked untrusted too, but
    // PDFs are the point of PDFDocument, which sniffs, counts pages and bounds DPI before calling it:
    // only the from-memory PDF loader is let back in.
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoadPdfBuffer", FALSE);
    // Requests are independent: cached operations would only hold other users' pixels in memory.
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    return 0;
}

VipsImage *prism_vips_header_from_buffer(const void *buf, size_t len, const char *options) {
    return vips_image_new_from_buffer(buf, len, options ? options : "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
}

int prism_vips_thumbnail_buffer(const void *buf, size_t len, VipsImage **out,
                                int width, int height, const char *options, int no_rotate) {
    return vips_thumbnail_buffer((void *)buf, len, out, width,
                                 "height", height,
                                 "size", VIPS_SIZE_DOWN,
                                 "no_rotate", no_rotate ? TRUE : FALSE,
                                 "option_string", options ? options : "",
                                 NULL);
}

int prism_vips_thumbnail_image(VipsImage *in, VipsImage **out, int width, int height) {
    return vips_thumbnail_image(in, out, width, "height", height, "size", VIPS_SIZE_DOWN, NULL);
}

int prism_vips_shrink(VipsImage *in, VipsImage **out, double factor) {
    return vips_shrink(in, out, factor, factor, NULL);
}

int prism_vips_band_min(VipsImage *in, int band, double *out) {
    VipsImage *extracted = NULL;
    if (vips_extract_band(in, &extracted, band, NULL)) return -1;
    int result = vips_min(extracted, out, NULL);
    g_object_unref(extracted);
    return result;
}

int prism_vips_flatten_white(VipsImage *in, VipsImage **out) {
    double white[] = { 255.0, 255.0, 255.0 };
    int n = vips_image_get_bands(in) >= 3 ? 3 : 1;
    VipsArrayDouble *background = vips_array_double_new(white, n);
    int result = vips_flatten(in, out, "background", background, NULL);
    vips_area_unref(VIPS_AREA(background));
    return result;
}

int prism_vips_to_srgb8(VipsImage *in, VipsImage **out, int keep_grey) {
    VipsInterpretation target = VIPS_INTERPRETATION_sRGB;
    if (keep_grey && vips_image_get_bands(in) <= 2) target = VIPS_INTERPRETATION_B_W;
    VipsImage *converted = NULL;
    if (vips_colourspace(in, &converted, target, NULL)) return -1;
    if (vips_image_get_format(converted) == VIPS_FORMAT_UCHAR) {
        *out = converted;
        return 0;
    }
    int result = vips_cast(converted, out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(converted);
    return result;
}

int prism_vips_extract_bands(VipsImage *in, VipsImage **out, int first, int n) {
    return vips_extract_band(in, out, first, "n", n, NULL);
}

int prism_vips_pdfload_page(const void *buf, size_t len, VipsImage **out, int page, double dpi) {
    return vips_pdfload_buffer((void *)buf, len, out, "page", page, "n", 1, "dpi", dpi,
                               "access", VIPS_ACCESS_SEQUENTIAL, NULL);
}

VipsImage *prism_vips_image_from_rgb(const void *data, size_t len, int width, int height, int bands) {
    return vips_image_new_from_memory_copy(data, len, width, height, bands, VIPS_FORMAT_UCHAR);
}

int prism_vips_jpegsave(VipsImage *in, void **buf, size_t *len, int quality, int strip) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "strip", strip ? TRUE : FALSE,
                                "optimize_coding", TRUE, NULL);
}

int prism_vips_pngsave(VipsImage *in, void **buf, size_t *len, int compression, int palette, int strip) {
    return vips_pngsave_buffer(in, buf, len, "compression", compression, "palette", palette ? TRUE : FALSE,
                               "strip", strip ? TRUE : FALSE, NULL);
}

int prism_vips_webpsave(VipsImage *in, void **buf, size_t *len, int quality, int lossless, int strip) {
    return vips_webpsave_buffer(in, buf, len, "Q", quality, "lossless", lossless ? TRUE : FALSE,
                                "strip", strip ? TRUE : FALSE, NULL);
}

int prism_vips_gifsave(VipsImage *in, void **buf, size_t *len, int strip) {
    return vips_gifsave_buffer(in, buf, len, "strip", strip ? TRUE : FALSE, NULL);
}

int prism_vips_heifsave(VipsImage *in, void **buf, size_t *len, int quality, int avif, int strip) {
    return vips_heifsave_buffer(in, buf, len, "Q", quality,
                                "compression", avif ? VIPS_FOREIGN_HEIF_COMPRESSION_AV1 : VIPS_FOREIGN_HEIF_COMPRESSION_HEVC,
                                "strip", strip ? TRUE : FALSE, NULL);
}

static const char *deadline_key = "prism-deadline-us";

static void prism_vips_eval(VipsImage *image, VipsProgress *progress, void *user) {
    (void)user;
    gint64 *deadline = g_object_get_data(G_OBJECT(image), deadline_key);
    if (deadline && g_get_monotonic_time() > *deadline) {
        // The signal is emitted on the image progress was armed on; the sink checks the image it
        // is computing (progress->im), so kill both.
        vips_image_set_kill(image, TRUE);
        if (progress && progress->im) vips_image_set_kill(progress->im, TRUE);
    }
}

void prism_vips_set_deadline(VipsImage *image, int64_t deadline_us) {
    gint64 *stored = g_object_get_data(G_OBJECT(image), deadline_key);
    if (stored) {
        *stored = deadline_us;
        return;
    }
    stored = g_new(gint64, 1);
    *stored = deadline_us;
    g_object_set_data_full(G_OBJECT(image), deadline_key, stored, g_free);
    vips_image_set_progress(image, TRUE);
    g_signal_connect(image, "eval", G_CALLBACK(prism_vips_eval), NULL);
}

int prism_vips_deadline_passed(VipsImage *image) {
    gint64 *deadline = g_object_get_data(G_OBJECT(image), deadline_key);
    return deadline && g_get_monotonic_time() > *deadline;
}
