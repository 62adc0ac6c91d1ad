import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

/**
 * A modal dialog (the native element): focus moves into it, the page
 * behind is inert, Escape closes it, and focus returns where it was.
 */
export function Modal({
  labelledBy,
  onClose,
  children,
}: {
  labelledBy: string;
  onClose: () => void;
  children: ComponentChildren;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  // Closing on unmount fires `close` later: by then another dialog may
  // have opened, which that event must not close.
  const unmounted = useRef(false);
  useEffect(() => {
    const element = dialog.current;
    element?.showModal();
    return () => {
      unmounted.current = true;
      element?.close();
    };
  }, []);
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby={labelledBy} onClose={() => unmounted.current || onClose()}>
      {children}
      <button type="button" onClick={onClose}>
        Close
      </button>
    </dialog>
  );
}
