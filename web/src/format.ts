/** Bytes as people read them (decimal units, as disks are sold). */
export function size(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A file's media type without parameters, lower case. */
export function mediaType(file: { content_type: string }): string {
  return file.content_type.split(";")[0].trim().toLowerCase();
}
