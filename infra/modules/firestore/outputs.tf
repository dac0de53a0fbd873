output "database" {
  description = "The database id the functions use (FIRESTORE_DATABASE)."
  value       = google_firestore_database.db.name
}
