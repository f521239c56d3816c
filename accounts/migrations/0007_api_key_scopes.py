from django.db import migrations, models

# Every scope there is as this migration is written: a key made before scopes existed could do
# everything, and still can (no behaviour change). A scope added later is not given to them.
EVERY_SCOPE_NOW = [
    "account:consent",
    "account:erase",
    "account:export",
    "account:keys",
    "account:settings",
    "chat",
    "context:read",
    "memories:manage",
    "memories:write",
]


def give_existing_keys_every_scope(apps, schema_editor):
    apps.get_model("accounts", "ApiKey").objects.update(scopes=EVERY_SCOPE_NOW)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_user_time_zone'),
    ]

    operations = [
        migrations.AddField(
            model_name='apikey',
            name='scopes',
            field=models.JSONField(default=list, help_text='Values of accounts.scopes.Scope: what the key may do.'),
        ),
        migrations.AddField(
            model_name='apikey',
            name='expires_at',
            field=models.DateTimeField(blank=True, help_text='Set: the key stops working then. Empty: never expires.', null=True),
        ),
        migrations.RunPython(give_existing_keys_every_scope, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='appgrant',
            name='scopes',
            field=models.JSONField(default=list, help_text='Values of accounts.scopes.APP_SCOPES.'),
        ),
        migrations.AlterField(
            model_name='accessevent',
            name='actor',
            field=models.CharField(choices=[('user', 'You'), ('assistant', 'The assistant'), ('api', 'An API client'), ('app', 'A registered app'), ('admin', 'An administrator')], max_length=20),
        ),
    ]
