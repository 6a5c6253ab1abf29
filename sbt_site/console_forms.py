from django import forms

from sbt_site.errors import ServiceError


class CreatedByServiceForm(forms.ModelForm):
    """A console "Add" form whose ``clean`` creates the row through its service and sets
    ``self.instance`` to it: the service's refusal shows on the form (the API's message), and
    the admin has nothing left to save. The admin's add view runs in a transaction, so a row
    created here does not outlive a later error."""

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.instance = self.create(cleaned)
            except ServiceError as error:
                self.service_refused(error)
        return cleaned

    def create(self, cleaned: dict):
        """Call the service; return the row it created."""
        raise NotImplementedError

    def service_refused(self, error: ServiceError) -> None:
        self.add_error(None, error.message)

    def _post_clean(self):
        if self.instance.pk is None:  # the service refused: the model's own checks may add to it
            super()._post_clean()

    def save(self, commit=True):
        return self.instance

    def save_m2m(self):
        """Nothing: the service saved the row and what belongs to it."""
