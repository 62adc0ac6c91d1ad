import { useEffect, useRef, useState } from "preact/hooks";
import { call, contentUrl } from "./api";
import type { FileItem, JobPage } from "./api";

/**
 * The thumbnails made of listed files, as blob: URLs by source file id:
 * known from the caller's newest 1,000 completed jobs and from `add` (a
 * job that completed on this page), fetched once each, when listed.
 */
export function useThumbnails(files: FileItem[]) {
  // Source file id → the thumbnail's file id; the newest job wins.
  const [made, setMade] = useState<Record<string, string>>({});
  const [urls, setUrls] = useState<Record<string, string>>({});
  const fetched = useRef(new Map<string, string>());
  const shown = useRef(new Map<string, string>());
  const mounted = useRef(true);

  // Asked once the first files are listed, so as not to slow the list.
  const listed = files.length > 0;
  const asked = useRef(false);
  useEffect(() => {
    if (!listed || asked.current) return;
    asked.current = true;
    call<JobPage>("GET", "/api/transformations?status=complete&limit=1000")
      .then((page) => {
        const found: Record<string, string> = {};
        for (const job of [...page.transformations].reverse()) {
          if (job.transformation_type === "thumbnail" && job.file_id && job.result_file_id) {
            found[job.file_id] = job.result_file_id;
          }
        }
        setMade((known) => ({ ...found, ...known }));
      })
      .catch(() => undefined);
  }, [listed]);
  useEffect(
    () => () => {
      mounted.current = false;
      shown.current.forEach((url) => URL.revokeObjectURL(url));
    },
    [],
  );

  useEffect(() => {
    for (const file of files) {
      const thumbnail = made[file.id];
      if (!thumbnail || fetched.current.get(file.id) === thumbnail) continue;
      fetched.current.set(file.id, thumbnail);
      // A thumbnail deleted since is simply not shown.
      contentUrl(thumbnail, "image/webp")
        .then((url) => {
          if (!mounted.current) return URL.revokeObjectURL(url);
          const replaced = shown.current.get(file.id);
          if (replaced) URL.revokeObjectURL(replaced);
          shown.current.set(file.id, url);
          setUrls((all) => ({ ...all, [file.id]: url }));
        })
        .catch(() => undefined);
    }
  }, [files, made]);

  return {
    urls,
    add: (fileId: string, thumbnailId: string) => setMade((known) => ({ ...known, [fileId]: thumbnailId })),
  };
}
