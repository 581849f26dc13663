"""The HTML report: template context, figures, methods text and rendering."""
