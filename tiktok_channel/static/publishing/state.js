// The uploads page's state rules, without the DOM (tested with node --test).

// Percent of the file TikTok holds; processing and published posts are fully uploaded.
export function percent(post) {
  if (post.status === "published" || post.status === "processing") return 100;
  if (!post.file_size) return 0;
  return Math.min(100, Math.floor((100 * post.bytes_done) / post.file_size));
}

// A post's data after a `post.updated` hint, or null when the hint is older than what the page shows.
export function merge(current, event) {
  if (!current || event.version <= current.version) return null;
  const next = { ...current, ...event };
  next.note =
    event.status === "uploading" && event.chunk_count
      ? `Uploaded ${event.chunks_done} of ${event.chunk_count} chunks. ${event.reason || ""}`.trim()
      : event.reason || current.note;
  return next;
}

// The fetched list wins over the page's copy unless the page already shows a newer version.
export function newer(current, fetched) {
  return !current || fetched.version >= current.version;
}
