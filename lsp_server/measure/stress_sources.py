"""Files that ``fimls bench --stress`` types into besides Python: TypeScript and Go.

Small but realistic modules, whose top-level function bodies the stress takes out and
types back (a Python module of the standard library is the third document).
"""

from __future__ import annotations

TYPESCRIPT = """\
import { EventEmitter } from "events";

export interface Task {
  id: number;
  title: string;
  done: boolean;
  tags: string[];
  due?: Date;
}

export type Filter = (task: Task) => boolean;

const emitter = new EventEmitter();

export function parseTask(line: string, id: number): Task | null {
  const match = /^\\s*\\[( |x)\\]\\s+(.+?)(\\s+#\\w+)*\\s*$/.exec(line);
  if (!match) {
    return null;
  }
  const done = match[1] === "x";
  const words = match[2].split(/\\s+/);
  const tags = words.filter((w) => w.startsWith("#")).map((w) => w.slice(1));
  const title = words.filter((w) => !w.startsWith("#")).join(" ");
  return { id, title, done, tags };
}

export function byTag(tag: string): Filter {
  const wanted = tag.toLowerCase();
  return (task: Task) => task.tags.some((t) => t.toLowerCase() === wanted);
}

export function overdue(tasks: Task[], now: Date = new Date()): Task[] {
  const result: Task[] = [];
  for (const task of tasks) {
    if (task.done || task.due === undefined) {
      continue;
    }
    if (task.due.getTime() < now.getTime()) {
      result.push(task);
    }
  }
  return result.sort((a, b) => (a.due?.getTime() ?? 0) - (b.due?.getTime() ?? 0));
}

export function summarize(tasks: Task[]): string {
  const done = tasks.filter((t) => t.done).length;
  const open = tasks.length - done;
  const tags = new Map<string, number>();
  for (const task of tasks) {
    for (const tag of task.tags) {
      tags.set(tag, (tags.get(tag) ?? 0) + 1);
    }
  }
  const top = [...tags.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const tagText = top.map(([tag, n]) => `#${tag} (${n})`).join(", ");
  return `${open} open, ${done} done; top tags: ${tagText || "none"}`;
}

export function complete(tasks: Task[], id: number): Task[] {
  return tasks.map((task) => {
    if (task.id !== id) {
      return task;
    }
    const updated = { ...task, done: true };
    emitter.emit("completed", updated);
    return updated;
  });
}

export function onCompleted(listener: (task: Task) => void): () => void {
  emitter.on("completed", listener);
  return () => {
    emitter.off("completed", listener);
  };
}
"""

GO = """\
package inventory

import (
\t"errors"
\t"fmt"
\t"sort"
\t"strings"
)

// Item is one line of the inventory.
type Item struct {
\tSKU      string
\tName     string
\tQuantity int
\tPrice    float64
}

// ErrNotFound is returned when no item has the SKU.
var ErrNotFound = errors.New("item not found")

// Parse reads "SKU;name;quantity;price" lines, skipping blank lines and comments.
func Parse(text string) ([]Item, error) {
\tvar items []Item
\tfor n, line := range strings.Split(text, "\\n") {
\t\tline = strings.TrimSpace(line)
\t\tif line == "" || strings.HasPrefix(line, "#") {
\t\t\tcontinue
\t\t}
\t\tfields := strings.Split(line, ";")
\t\tif len(fields) != 4 {
\t\t\treturn nil, fmt.Errorf("line %d: want 4 fields, got %d", n+1, len(fields))
\t\t}
\t\tvar item Item
\t\titem.SKU, item.Name = fields[0], fields[1]
\t\tif _, err := fmt.Sscan(fields[2], &item.Quantity); err != nil {
\t\t\treturn nil, fmt.Errorf("line %d: quantity: %w", n+1, err)
\t\t}
\t\tif _, err := fmt.Sscan(fields[3], &item.Price); err != nil {
\t\t\treturn nil, fmt.Errorf("line %d: price: %w", n+1, err)
\t\t}
\t\titems = append(items, item)
\t}
\treturn items, nil
}

// Find returns the item with the SKU.
func Find(items []Item, sku string) (Item, error) {
\tfor _, item := range items {
\t\tif item.SKU == sku {
\t\t\treturn item, nil
\t\t}
\t}
\treturn Item{}, ErrNotFound
}

// Value is the total price of everything in stock.
func Value(items []Item) float64 {
\ttotal := 0.0
\tfor _, item := range items {
\t\tif item.Quantity > 0 {
\t\t\ttotal += float64(item.Quantity) * item.Price
\t\t}
\t}
\treturn total
}

// LowStock lists the items below the threshold, fewest first.
func LowStock(items []Item, threshold int) []Item {
\tvar low []Item
\tfor _, item := range items {
\t\tif item.Quantity < threshold {
\t\t\tlow = append(low, item)
\t\t}
\t}
\tsort.Slice(low, func(i, j int) bool {
\t\treturn low[i].Quantity < low[j].Quantity
\t})
\treturn low
}

// Restock adds quantity to the item with the SKU.
func Restock(items []Item, sku string, quantity int) error {
\tif quantity <= 0 {
\t\treturn fmt.Errorf("restock %s: quantity must be positive, got %d", sku, quantity)
\t}
\tfor i := range items {
\t\tif items[i].SKU == sku {
\t\t\titems[i].Quantity += quantity
\t\t\treturn nil
\t\t}
\t}
\treturn ErrNotFound
}
"""
