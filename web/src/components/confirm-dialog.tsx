import { useEffect, useRef } from 'hono/jsx/dom'
import type { Child } from 'hono/jsx'

export interface ConfirmDialogProps {
  open: boolean
  title: string
  children: Child
  confirmLabel: string
  onConfirm: () => void
  onCancel: () => void
}

/** A modal `<dialog>`: focus moves into it, Escape cancels, focus returns on close. */
export function ConfirmDialog({ open, title, children, confirmLabel, onConfirm, onCancel }: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const d = ref.current
    if (!d) return
    if (open && !d.open) d.showModal()
    if (!open && d.open) d.close()
  }, [open])
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={(e: Event) => (e.preventDefault(), onCancel())}>
      <h2 id="confirm-title">{title}</h2>
      {children}
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="primary" onClick={onConfirm} autofocus>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  )
}
